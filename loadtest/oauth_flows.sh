#!/usr/bin/env bash
# The OAuth figures of issue #12 in one run: Palisade and node-oidc-provider (../shared/peers), each
# driven by loadtest/oauth_flows.py the same way (aiohttp, CONCURRENCY workers for SECONDS each):
# the full authorization-code + PKCE flow (Palisade only: the peer kit's node-oidc-provider has no
# interactive login), refresh-token rotation (one chain per worker) and introspection.
#   loadtest/oauth_flows.sh [SECONDS] [CONCURRENCY]      (defaults 10 and 16)
# Palisade: a release build on the embedded SQLite default (loadtest/serve.sh); a confidential client
# (client_secret_basic) for authorization_code and refresh_token. node-oidc-provider: its bench client
# (client_secret_basic), in-memory store; run ../shared/peers/setup-node-oidc-provider.sh and
# ../shared/peers/setup-driver.sh first (the driver venv has aiohttp).
set -euo pipefail
seconds=${1:-10}
concurrency=${2:-16}
# shellcheck source=serve.sh
. "$(dirname "$0")/serve.sh" loadadmin
python=${PEERS_PYTHON:-$HOME/.cache/peers/driver/venv/bin/python}
created=$("$bin" client create --name bench --redirect-uri http://127.0.0.1:9/cb \
  --grant authorization_code --grant refresh_token --scope openid --scope profile 2>/dev/null)
id=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
secret=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
echo "== palisade $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || true)" >&2
"$python" "$here/oauth_flows.py" palisade "http://127.0.0.1:$port" "$id" "$secret" \
  --seconds "$seconds" --concurrency "$concurrency"

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
echo "== node-oidc-provider" >&2
"$python" "$here/oauth_flows.py" node "http://127.0.0.1:$node_port" "${BENCH_CLIENT_ID:-bench-client}" \
  "${BENCH_CLIENT_SECRET:-bench-secret-0123456789abcdef}" --seconds "$seconds" --concurrency "$concurrency"
