# Sourced by the load scripts: starts a release build of palisade on a free loopback port with a
# temporary data directory and master key, waits for /health, registers the account "$1", and stops
# the server and removes the directory on exit. Sets: here, bin, data, port, server.
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
  -d "{\"username\": \"$1\", \"password\": \"Load-test-pass-1234!\"}" > /dev/null
