#!/usr/bin/env bash
# Brings up the real engines fleet needs on a bare Debian 12 machine, idempotently:
# Debian packages, dockerd, a registry on 127.0.0.1, the debootstrap base image and the test images.
# Sourced by scripts/quickstart.sh and scripts/test.sh; each function is safe to call again.
set -euo pipefail

FLEET_CACHE=${FLEET_CACHE:-/var/cache/fleet}
FLEET_REGISTRY=${FLEET_REGISTRY:-127.0.0.1:5000}
FLEET_BASE_IMAGE=${FLEET_BASE_IMAGE:-fleet/base:bookworm}
FLEET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian packages: the Docker engine, the registry, debootstrap, a static busybox for test images,
# promtool (from prometheus) to check /metrics output, and systemd for systemctl and systemd-analyze
# (the install tests verify the units and enable them on a scratch root; systemd need not be running).
ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v curl >/dev/null || missing+=(curl)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Node dependencies and the compiled TypeScript.
ensure_build() {
  cd "$FLEET_ROOT"
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm dependencies"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  log "building"
  npm run --silent build
}

docker_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# dockerd in the background when no daemon answers on /var/run/docker.sock.
ensure_dockerd() {
  if docker_up; then return; fi
  log "starting dockerd (log: /var/log/fleet-dockerd.log)"
  mkdir -p /var/log
  nohup dockerd >/var/log/fleet-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker_up && return; sleep 1; done
  echo "dockerd did not come up; see /var/log/fleet-dockerd.log" >&2
  tail -20 /var/log/fleet-dockerd.log >&2
  return 1
}

# Stops dockerd and starts it again (end-to-end tests check that agents recover from it). Without
# live-restore every container stops with the daemon, as on a host whose Docker was upgraded.
restart_dockerd() {
  local pid
  pid=$(pgrep -x dockerd | head -1 || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid"
    # The old daemon must be gone before a new one is started: one still shutting down answers
    # "up" to ensure_dockerd, which then starts nothing, and the daemon is gone for good once it
    # exits. A slow shutdown (containers stopping) gets 60 s, then SIGKILL.
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
  fi
  ensure_dockerd
}

registry_up() { curl -fsS "http://$FLEET_REGISTRY/v2/" >/dev/null 2>&1; }

# A registry v2 on 127.0.0.1 with our own config (no auth); storage survives across runs in the cache.
ensure_registry() {
  if registry_up; then return; fi
  mkdir -p "$FLEET_CACHE/registry"
  cat >"$FLEET_CACHE/registry.yml" <<YML
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $FLEET_CACHE/registry }
  delete: { enabled: true }
http:
  addr: $FLEET_REGISTRY
YML
  log "starting registry on $FLEET_REGISTRY (log: /var/log/fleet-registry.log)"
  nohup docker-registry serve "$FLEET_CACHE/registry.yml" >/var/log/fleet-registry.log 2>&1 &
  for _ in $(seq 1 30); do registry_up && return; sleep 0.5; done
  echo "registry did not come up; see /var/log/fleet-registry.log" >&2
  return 1
}

FLEET_AUTH_REGISTRY=${FLEET_AUTH_REGISTRY:-127.0.0.1:5001}
FLEET_AUTH_REGISTRY_USER=fleet-e2e

# 401 without credentials is what an authenticating registry answers: it is up.
auth_registry_up() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$FLEET_AUTH_REGISTRY/v2/")" = 401 ]
}

# A second registry on 127.0.0.1 that requires a login (htpasswd, bcrypt), for the private-registry
# tests: user fleet-e2e, password generated once into $FLEET_CACHE/registry-auth.password (0600).
ensure_auth_registry() {
  if auth_registry_up; then return; fi
  mkdir -p "$FLEET_CACHE/registry-auth"
  local pwfile="$FLEET_CACHE/registry-auth.password"
  if [ ! -s "$pwfile" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pwfile")
  fi
  htpasswd -Bbn "$FLEET_AUTH_REGISTRY_USER" "$(cat "$pwfile")" >"$FLEET_CACHE/registry-auth.htpasswd"
  cat >"$FLEET_CACHE/registry-auth.yml" <<YML
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $FLEET_CACHE/registry-auth }
  delete: { enabled: true }
http:
  addr: $FLEET_AUTH_REGISTRY
auth:
  htpasswd: { realm: fleet-e2e, path: $FLEET_CACHE/registry-auth.htpasswd }
YML
  log "starting the authenticating registry on $FLEET_AUTH_REGISTRY (log: /var/log/fleet-registry-auth.log)"
  nohup docker-registry serve "$FLEET_CACHE/registry-auth.yml" >/var/log/fleet-registry-auth.log 2>&1 &
  for _ in $(seq 1 30); do auth_registry_up && return; sleep 0.5; done
  echo "authenticating registry did not come up; see /var/log/fleet-registry-auth.log" >&2
  return 1
}

apt_mirror() {
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -m1 -E 'debian/?$|debian ' | sed -E 's/^URIs: *//; s/^deb +(\[[^]]*\] +)?//; s/ .*//' || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# The debootstrap base image (no public registry is reachable). Cached as a tarball so a lost
# Docker data directory costs an import, not a debootstrap.
ensure_base_image() {
  if docker image inspect "$FLEET_BASE_IMAGE" >/dev/null 2>&1; then return; fi
  local tarball="$FLEET_CACHE/base-bookworm.tar"
  if [ ! -s "$tarball" ]; then
    local dir
    dir=$(mktemp -d)
    log "debootstrap bookworm from $(apt_mirror) (about 30 s)"
    debootstrap --variant=minbase bookworm "$dir" "$(apt_mirror)" >/var/log/fleet-debootstrap.log 2>&1
    mkdir -p "$FLEET_CACHE"
    tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  log "importing $FLEET_BASE_IMAGE"
  docker import "$tarball" "$FLEET_BASE_IMAGE" >/dev/null
}

# Test images, pushed to the local registry so agents really pull them. Rebuilt only when the
# image's folder changes (its content hash is kept in the cache) or the registry lost them.
ensure_test_images() {
  local src="$FLEET_ROOT/test/images/web" sum stamp="$FLEET_CACHE/web-image.sum"
  sum=$( (cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum; cat /bin/busybox | sha256sum; echo "$FLEET_BASE_IMAGE") | sha256sum | cut -c1-16)
  local fresh=1
  [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] || fresh=0
  for v in 1 2; do
    curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "http://$FLEET_REGISTRY/v2/fleet-test/web/manifests/$v" 2>/dev/null || fresh=0
  done
  [ "$fresh" = 1 ] && return
  local ctx
  ctx=$(mktemp -d)
  cp /bin/busybox "$ctx/busybox"
  cp -r "$src/." "$ctx/"
  for v in 1 2; do
    local ref="$FLEET_REGISTRY/fleet-test/web:$v"
    log "building $ref"
    docker build -q --build-arg BASE="$FLEET_BASE_IMAGE" --build-arg VERSION="$v" -t "$ref" "$ctx" >/dev/null 2>"$FLEET_CACHE/build.err" ||
      { cat "$FLEET_CACHE/build.err" >&2; return 1; }
    docker push -q "$ref" >/dev/null
  done
  rm -rf "$ctx"
  echo "$sum" >"$stamp"
}

# The nginx image the proxy tests run: Debian's nginx-light on the local base, pushed as fleet/nginx:1
# (production proxies use the official nginx image). Rebuilt only when its folder or the base's name
# changes (the content hash is kept in the cache) or the registry lost it.
FLEET_NGINX_IMAGE=${FLEET_NGINX_IMAGE:-$FLEET_REGISTRY/fleet/nginx:1}
ensure_nginx_image() {
  local src="$FLEET_ROOT/test/images/nginx" sum stamp="$FLEET_CACHE/nginx-image.sum"
  sum=$( (cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$FLEET_BASE_IMAGE $FLEET_NGINX_IMAGE") | sha256sum | cut -c1-16)
  local repo_tag=${FLEET_NGINX_IMAGE#"$FLEET_REGISTRY"/}
  if [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] &&
    curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "http://$FLEET_REGISTRY/v2/${repo_tag%:*}/manifests/${repo_tag##*:}" 2>/dev/null; then
    return
  fi
  log "building $FLEET_NGINX_IMAGE"
  mkdir -p "$FLEET_CACHE"
  docker build -q --build-arg BASE="$FLEET_BASE_IMAGE" -t "$FLEET_NGINX_IMAGE" "$src" >/dev/null 2>"$FLEET_CACHE/build.err" ||
    { cat "$FLEET_CACHE/build.err" >&2; return 1; }
  docker push -q "$FLEET_NGINX_IMAGE" >/dev/null
  echo "$sum" >"$stamp"
}

# The inference image for CPU on the local base (production builds use the CUDA base: see
# inference/Dockerfile), pushed to the registry under a content tag and under :dev.
FLEET_INFERENCE_IMAGE=${FLEET_INFERENCE_IMAGE:-$FLEET_REGISTRY/fleet/inference}
ensure_inference_image() {
  local ctx="$FLEET_CACHE/inference-ctx" sum
  log "assembling the inference image context"
  sum=$(node "$FLEET_ROOT/scripts/inference-context.mjs" "$ctx" cpu | tail -1)
  if ! curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$FLEET_REGISTRY/v2/fleet/inference/manifests/$sum" 2>/dev/null; then
    log "building $FLEET_INFERENCE_IMAGE:$sum"
    docker build -q --build-arg BASE="$FLEET_BASE_IMAGE" --build-arg TARGET=cpu -t "$FLEET_INFERENCE_IMAGE:$sum" "$ctx" \
      >/dev/null 2>"$FLEET_CACHE/build.err" || { cat "$FLEET_CACHE/build.err" >&2; return 1; }
    docker push -q "$FLEET_INFERENCE_IMAGE:$sum" >/dev/null
  fi
  docker tag "$FLEET_INFERENCE_IMAGE:$sum" "$FLEET_INFERENCE_IMAGE:dev"
  docker push -q "$FLEET_INFERENCE_IMAGE:dev" >/dev/null
  echo "$sum" >"$FLEET_CACHE/inference-image.tag"
}

# The tiny random-weight GGUF (a few hundred KB) that tests and the quickstart serve.
FLEET_MODEL_DIR=${FLEET_MODEL_DIR:-/var/lib/fleet/models}
ensure_tiny_model() {
  mkdir -p "$FLEET_MODEL_DIR"
  [ -s "$FLEET_MODEL_DIR/tiny.gguf" ] || node "$FLEET_ROOT/dist/test/helpers/tiny-gguf.js" "$FLEET_MODEL_DIR/tiny.gguf" >/dev/null
  chmod -R a+rX "$FLEET_MODEL_DIR"
}

ensure_engines() {
  ensure_packages
  ensure_dockerd
  ensure_registry
  ensure_base_image
  ensure_test_images
  ensure_nginx_image
}
