#!/usr/bin/env bash
# The passkey page in a real browser: builds `palisade` (debug), serves it on a free loopback port
# as http://localhost:<port> (so the WebAuthn relying party id is `localhost`, where browsers allow
# WebAuthn over http) with a temporary SQLite database, registers a user over the API and runs
# passkeys.mjs in headless Chromium. The server is always stopped; the exit status is the test's.
# Needs /usr/bin/chromium (Debian's `chromium`), node and `npm ci` here; .ci/run installs them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
username=passkey-user
password=correct-Horse-battery-9-staple

fail() { echo "browser: $*" >&2; exit 1; }
[ -x "$CHROMIUM" ] || fail "$CHROMIUM is missing: install Debian's chromium (apt-get install chromium; .ci/run does)"
command -v node >/dev/null 2>&1 || fail "node is missing: install Debian's nodejs and npm"
if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "browser: npm ci"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "browser: cargo build -p palisade"
(cd "$root" && cargo build --locked -q -p palisade)
bin="$CARGO_TARGET_DIR/debug/palisade"
[ -x "$bin" ] || fail "$bin was not built"

work=$(mktemp -d)
server_pid=
stop() {
  local status=$?
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" != 0 ] && [ -s "$work/server.log" ]; then
    echo "browser: the server's log (last 40 lines):" >&2
    tail -n 40 "$work/server.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap stop EXIT
trap 'exit 130' INT TERM

# A free loopback port; the issuer must name it before the server starts, so port 0 won't do.
port=$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
base="http://localhost:$port"

mkdir -p "$work/data"
# Run from the temporary folder, so no palisade.toml or .env of the checkout is read.
(
  cd "$work"
  exec env \
    PALISADE_DATA_DIR="$work/data" \
    PALISADE_DATABASE_URL="sqlite://$work/palisade.db" \
    PALISADE_MASTER_KEY="KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=" \
    PALISADE_BIND="127.0.0.1:$port" \
    PALISADE_ISSUER="$base" \
    "$bin" serve
) >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start-up"
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null || fail "the server did not answer /health on port $port"

registered=$(curl -fsS -X POST "http://127.0.0.1:$port/auth/register" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$username\",\"password\":\"$password\"}") || fail "registering $username failed"
user_id=$(printf '%s' "$registered" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).user_id));')

echo "browser: Palisade on $base, user $username ($user_id)"
shots="$root/target/browser-screenshots"
mkdir -p "$shots" && rm -f "$shots"/*.png
status=0
(cd "$here" && BASE_URL="$base" PALISADE_USERNAME="$username" PALISADE_PASSWORD="$password" PALISADE_USER_ID="$user_id" \
  SCREENSHOT_DIR="$shots" node passkeys.mjs) || status=$?
exit "$status"
