#!/usr/bin/env bash
# The server's own pages in a real browser: builds `palisade` (debug), serves it on a free loopback
# port as http://localhost:<port> (so the WebAuthn relying party id is `localhost`, where browsers
# allow WebAuthn over http) with a temporary SQLite database, registers the users over the API, makes
# the dashboard's and the report's administrators with `palisade user grant-admin` (on the same
# database, while the server runs), registers the OAuth client "Shop" with `palisade client create`
# (same database) for the relying party oauth.mjs serves on another free loopback port, and runs the
# tests in headless Chromium: passkeys.mjs (/passkeys), dashboard.mjs (/dashboard), report.mjs (the
# printable compliance report) and oauth.mjs (the sign-in, consent, form_post and logout pages of
# /oauth2), or only those named (`run.sh oauth`). Every test runs even when one before it failed; the
# server is always stopped; the exit status is 0 only when all passed.
# Needs /usr/bin/chromium (Debian's `chromium`), node and `npm ci` here; .ci/run installs them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
username=passkey-user
password=correct-Horse-battery-9-staple
# The dashboard's users: an administrator, one who is not, and the account the test attacks.
admin_username=dashboard-admin
viewer_username=dashboard-viewer
target_username=dashboard-target
# The report's administrator (another one: the dashboard's enrols a second factor).
report_admin_username=report-admin
# The user who signs in to the OAuth client through /oauth2/authorize.
oauth_username=oauth-user
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(passkeys dashboard report oauth)

fail() { echo "browser: $*" >&2; exit 1; }
for test in "${tests[@]}"; do
  [ -f "$here/$test.mjs" ] || fail "no such test: $test (passkeys, dashboard, report or oauth)"
done
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
free_port() { node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'; }
port=$(free_port)
base="http://localhost:$port"
# The OAuth test's relying party: another origin (port), registered in the client's redirect URIs.
rp_port=$(free_port)
while [ "$rp_port" = "$port" ]; do rp_port=$(free_port); done
rp_base="http://localhost:$rp_port"

mkdir -p "$work/data"
# The settings of the server and of the CLI commands run against its database.
settings=(
  PALISADE_DATA_DIR="$work/data"
  PALISADE_DATABASE_URL="sqlite://$work/palisade.db"
  PALISADE_MASTER_KEY="KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio="
  PALISADE_BIND="127.0.0.1:$port"
  PALISADE_ISSUER="$base"
)
# Run from the temporary folder, so no palisade.toml or .env of the checkout is read.
palisade() { (cd "$work" && env "${settings[@]}" "$bin" "$@"); }
(
  cd "$work"
  exec env "${settings[@]}" "$bin" serve
) >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start-up"
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null || fail "the server did not answer /health on port $port"

register() { # username; prints the new user's id
  local answer
  answer=$(curl -fsS -X POST "http://127.0.0.1:$port/auth/register" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$password\"}") || fail "registering $1 failed"
  printf '%s' "$answer" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).user_id));'
}
user_id=$(register "$username")
for user in "$admin_username" "$viewer_username" "$target_username" "$report_admin_username" "$oauth_username"; do
  register "$user" >/dev/null
done
for admin in "$admin_username" "$report_admin_username"; do
  palisade user grant-admin "$admin" >"$work/grant-admin.log" 2>&1 \
    || { cat "$work/grant-admin.log" >&2; fail "palisade user grant-admin $admin failed"; }
done

# The OAuth client, on the server's database while it runs: its JSON (with the secret, shown once) is
# read by oauth.mjs.
palisade client create --name Shop --redirect-uri "$rp_base/cb" --post-logout-redirect-uri "$rp_base/bye" \
  --grant authorization_code --grant refresh_token --scope openid --scope profile \
  >"$work/oauth-client.json" 2>"$work/client-create.log" \
  || { cat "$work/client-create.log" >&2; fail "palisade client create failed"; }
json_field() { node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(c[process.argv[2]] ?? "");' "$@"; }
client_id=$(json_field "$work/oauth-client.json" client_id)
client_secret=$(json_field "$work/oauth-client.json" client_secret)
[ -n "$client_id" ] && [ -n "$client_secret" ] || fail "palisade client create printed no client_id or client_secret"

echo "browser: Palisade on $base; users $username ($user_id), $admin_username (administrator), $viewer_username, $target_username, $oauth_username; OAuth client $client_id for $rp_base"
shots="$root/target/browser-screenshots"
mkdir -p "$shots" && rm -f "$shots"/*.png
status=0
failed=()
for test in "${tests[@]}"; do
  echo "browser: $test.mjs"
  (cd "$here" && BASE_URL="$base" SCREENSHOT_DIR="$shots" \
    PALISADE_USERNAME="$username" PALISADE_PASSWORD="$password" PALISADE_USER_ID="$user_id" \
    PALISADE_ADMIN_USERNAME="$admin_username" PALISADE_VIEWER_USERNAME="$viewer_username" \
    PALISADE_TARGET_USERNAME="$target_username" PALISADE_REPORT_ADMIN_USERNAME="$report_admin_username" \
    PALISADE_OAUTH_USERNAME="$oauth_username" OAUTH_CLIENT_ID="$client_id" OAUTH_CLIENT_SECRET="$client_secret" \
    OAUTH_RP_PORT="$rp_port" \
    node "$test.mjs") || { status=1; failed+=("$test"); }
done
[ "$status" = 0 ] || echo "browser: failed: ${failed[*]}" >&2
exit "$status"
