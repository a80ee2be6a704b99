#!/usr/bin/env bash
# HTTP throughput of POST /crypto/encrypt (1 KiB, INTERNAL) on the embedded default (SQLite): starts a
# release build on a free loopback port with a temporary data directory, registers an owner, makes an
# API key with crypto:encrypt through the CLI, then drives wrk -t1 -c32 for 10 s, without and with an
# owner in the context (a derived key per call). Prints wrk's summaries.
#
#   loadtest/crypto_encrypt.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${PALISADE_BIN:-${CARGO_TARGET_DIR:-$here/../target}/release/palisade}
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
export PALISADE_DATA_DIR="$data" PALISADE_MASTER_KEY="$(head -c32 /dev/urandom | base64)"
"$bin" serve --bind "127.0.0.1:$port" > "$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.2; done
curl -sf -X POST "http://127.0.0.1:$port/auth/register" -H 'content-type: application/json' \
  -d '{"username": "loadapp", "password": "Load-test-pass-1234!"}' > /dev/null
API_KEY=$("$bin" apikey create --user loadapp --name load --scope crypto:encrypt 2>/dev/null)
export API_KEY
for owner in 0 1; do
  echo "== owner=$owner"
  OWNER=$owner wrk -t1 -c32 -d10s -s "$here/crypto_encrypt.lua" "http://127.0.0.1:$port/crypto/encrypt"
done
