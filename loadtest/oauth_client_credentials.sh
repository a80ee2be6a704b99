#!/usr/bin/env bash
# Client-credentials tokens per second (issue #12), Palisade and node-oidc-provider in the same run,
# driven the same way: wrk -t1 -c16 for 10 s (override: loadtest/oauth_client_credentials.sh SECONDS
# CONNECTIONS), POST {token endpoint} grant_type=client_credentials&scope=api with HTTP Basic client
# authentication (loadtest/oauth_token.lua), --latency for the percentiles.
#   - Palisade: a release build on the embedded SQLite default (loadtest/serve.sh), a confidential
#     client made with `palisade client create --grant client_credentials --scope api`; every token is
#     a signed JWT (EdDSA) and every issue is audited.
#   - node-oidc-provider: ../shared/peers (run its setup script first), its in-memory adapter and its
#     bench client (client_secret_basic); its client-credentials tokens are opaque and stored.
set -euo pipefail
seconds=${1:-10}
connections=${2:-16}
# shellcheck source=serve.sh
. "$(dirname "$0")/serve.sh" loadadmin
created=$("$bin" client create --name bench --grant client_credentials --scope api 2>/dev/null)
id=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
secret=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
export SCOPE=api
BASIC=$(printf '%s:%s' "$id" "$secret" | base64 -w0)
export BASIC
curl -sf -u "$id:$secret" -d grant_type=client_credentials -d scope=api "http://127.0.0.1:$port/oauth2/token" > /dev/null
echo "== palisade $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || true)"
wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$here/oauth_token.lua" "http://127.0.0.1:$port/oauth2/token"

peers=$(cd "$here/../../shared/peers" 2>/dev/null && pwd || true)
if [ -z "$peers" ] || [ ! -x "$peers/start-node-oidc-provider.sh" ]; then
  echo "node-oidc-provider: ../shared/peers not found; only Palisade was measured" >&2
  exit 0
fi
node_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
setsid "$peers/start-node-oidc-provider.sh" "$node_port" > /dev/null 2>&1 &
node=$!
trap 'kill -- -$node 2>/dev/null; kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$node_port/.well-known/openid-configuration" > /dev/null && break
  sleep 0.2
done
node_id=${BENCH_CLIENT_ID:-bench-client}
node_secret=${BENCH_CLIENT_SECRET:-bench-secret-0123456789abcdef}
BASIC=$(printf '%s:%s' "$node_id" "$node_secret" | base64 -w0)
export BASIC
curl -sf -u "$node_id:$node_secret" -d grant_type=client_credentials -d scope=api \
  "http://127.0.0.1:$node_port/token" > /dev/null
echo "== node-oidc-provider"
wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$here/oauth_token.lua" "http://127.0.0.1:$node_port/token"
