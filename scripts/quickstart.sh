#!/usr/bin/env bash
# README command 1: on a bare Debian 12 machine, installs what is missing, starts Docker and a
# local registry, the control plane and one agent on this machine, applies playbooks/dev.yaml,
# waits until it runs and prints what to try next. Safe to run again; `stop` stops fleet again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

STATE="$FLEET_ROOT/.fleet"
API=127.0.0.1:7080
GRPC=127.0.0.1:7443
NODE=${FLEET_NODE:-local}
export FLEET_SERVER="https://$API"
# The REST API speaks TLS only, with a certificate from the control plane's own CA (written on its
# first start): curl and the CLI trust exactly that CA.
CA="$STATE/server/ca.crt"
export FLEET_CA_FILE="$CA"

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "${1:-}" = stop ]; then
  for p in agent server; do
    if pid_alive "$STATE/$p.pid"; then kill "$(cat "$STATE/$p.pid")" && log "stopped fleet $p"; fi
  done
  exit 0
fi

ensure_packages
ensure_build
ensure_dockerd
ensure_registry
ensure_base_image
ensure_inference_image
ensure_nginx_image
ensure_tiny_model
ln -sf "$FLEET_ROOT/bin/fleet.js" /usr/local/bin/fleet
mkdir -p "$STATE"

if ! curl -fsS --cacert "$CA" "https://$API/healthz" >/dev/null 2>&1; then
  log "starting fleet server on $API (log: .fleet/server.log)"
  nohup fleet server --data-dir "$STATE/server" --listen "$API" --grpc-listen "$GRPC" >>"$STATE/server.log" 2>&1 &
  echo $! >"$STATE/server.pid"
  for _ in $(seq 1 50); do curl -fsS --cacert "$CA" "https://$API/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
fi
# The CLI's token: the bootstrap admin token the server wrote on its first start, saved (0600) to
# ~/.config/fleet/config.json with the server's address and CA file, so every command below and
# printed afterwards works in any shell. `fleet token create` makes narrower ones (see README, Security).
if [ -z "${FLEET_TOKEN:-}" ]; then
  fleet login --token-file "$STATE/server/admin-token" --ca-file "$CA"
fi
if ! pid_alive "$STATE/agent.pid"; then
  # The first start enrolls the agent with a single-use join token (its label travels with it);
  # later starts reuse the certificate in .fleet/agent/$NODE/tls and need no token.
  JOIN=()
  if [ ! -f "$STATE/agent/$NODE/tls/node.crt" ]; then
    log "creating a join token for node '$NODE'"
    JOIN=(--join-token "$(fleet join-token create --ttl 10m --label role=dev)")
  fi
  log "starting fleet agent for node '$NODE' (mutual TLS; log: .fleet/agent.log)"
  nohup fleet agent --node "$NODE" --control-plane "$GRPC" "${JOIN[@]}" \
    --state-dir "$STATE/agent" >>"$STATE/agent.log" 2>&1 &
  echo $! >"$STATE/agent.pid"
fi
for _ in $(seq 1 100); do
  fleet nodes -o json 2>/dev/null | grep -q '"connected": true' && break
  sleep 0.2
done

# nginx asks for an API key: one generated once into .fleet/dev-api-key (0600) and stored as the
# secret dev-api-keys that playbooks/dev.yaml names (setting the same value again changes nothing).
if [ ! -s "$STATE/dev-api-key" ]; then
  (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$STATE/dev-api-key")
fi
fleet secret set dev-api-keys --from-file "$STATE/dev-api-key"

log "fleet apply playbooks/dev.yaml"
# fleet apply follows the rollout: it returns once the agent's probe found the model server healthy
# (for min_healthy_time) and nginx routes to it.
fleet apply playbooks/dev.yaml --timeout 180s
echo
fleet nodes
echo
cat <<TXT
fleet is running: control plane on https://$API (its CA: $CA), one agent (node '$NODE'), deployment 'dev':
the model server behind the nginx the agent runs on http://127.0.0.1:18070.

Try (a tiny random-weight model: the words are nonsense, the tokens are real; nginx asks for the
API key in .fleet/dev-api-key, kept by the control plane as the secret dev-api-keys):
  KEY=\$(cat .fleet/dev-api-key)
  curl -N http://127.0.0.1:18070/telechat/gptDialog/v2 -H "authorization: Bearer \$KEY" \\
    -H 'content-type: application/json' -d '{"dialog": [{"role": "user", "content": "Hello"}], "max_length": 64}'
  curl http://127.0.0.1:18070/v1/chat/completions -H "authorization: Bearer \$KEY" \\
    -H 'content-type: application/json' \\
    -d '{"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 32}'
  curl http://127.0.0.1:18070/health             # no key needed: nginx forwards it to a healthy replica
  fleet secret list                             # names, sizes, users of each secret; never values
  fleet status dev                              # state, probe health, restarts per node and service
  fleet apply playbooks/dev.yaml --check        # edit dev.yaml first to see a plan
  fleet status dev -o json
  fleet events --limit 20                        # applies and token changes name their actor
  fleet token create --role viewer --name me-ro # a read-only token, printed once
  curl --cacert $CA -H "authorization: Bearer \$(cat $STATE/server/admin-token)" https://$API/v1/nodes
The CLI uses the bootstrap admin token ($STATE/server/admin-token) and trusts the control plane's CA,
both saved by \`fleet login\` to ~/.config/fleet/config.json (0600).
Logs: .fleet/server.log, .fleet/agent.log.  Stop: bash scripts/quickstart.sh stop
TXT
