#!/usr/bin/env bash
# The whole test suite on a bare Debian 12 machine (README command 2; .ci/run calls exactly this).
# Installs what is missing, starts dockerd and the registry when they are not answering, builds
# the base, test and inference images (cached in /var/cache/fleet) and the tiny model, then lints
# and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_packages
ensure_build
ensure_dockerd
ensure_registry
ensure_auth_registry
ensure_base_image
ensure_test_images
ensure_inference_image
ensure_nginx_image
ensure_tiny_model

log "lint and format check (biome)"
npx biome check .
log "generated protobuf code is current"
node scripts/gen-proto.mjs --check

log "tests: unit, then end to end against the real engines"
node --test --test-concurrency=1 dist/test/unit dist/test/e2e
