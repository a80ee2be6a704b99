#!/usr/bin/env bash
# Starts a release build of Palisade on a free loopback port with a temporary data dir, runs
# loadtest/mfa.py against it (register and enrol TOTP for USERS users, then the verify bursts and the
# login + verify flow), prints its JSON lines on stdout and stops the server. Every load is bounded in
# time; the server's log goes to $DATA/palisade.log (kept when the run fails).
#
#   cargo build --release -p palisade
#   loadtest/mfa.sh > mfa-sqlite.jsonl                                        # embedded SQLite (default)
#   PALISADE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/palisade_mfa \
#   PALISADE_REDIS_URL=redis://127.0.0.1:6379 loadtest/mfa.sh > mfa-pg.jsonl  # an empty database: migrated here
#
# PALISADE_BIN defaults to $CARGO_TARGET_DIR/release/palisade (or target/release/palisade); extra
# arguments go to mfa.py (e.g. --users 6000 --flow-seconds 15). Needs the driver's venv:
# ../shared/peers/setup-driver.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${PALISADE_BIN:-${CARGO_TARGET_DIR:-$here/../target}/release/palisade}
python=${DRIVER_PYTHON:-$HOME/.cache/peers/driver/venv/bin/python}
unset PALISADE_BIN  # the script's, not a setting: serve refuses unknown PALISADE_* variables
data=$(mktemp -d "${TMPDIR:-/tmp}/palisade-mfa-XXXXXX")
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

export PALISADE_BIND="127.0.0.1:$port" PALISADE_DATA_DIR="$data"
export PALISADE_DATABASE_URL="${PALISADE_DATABASE_URL:-sqlite://$data/palisade.db}"
export PALISADE_MASTER_KEY="${PALISADE_MASTER_KEY:-$(head -c32 /dev/urandom | base64)}"

case "$PALISADE_DATABASE_URL" in
  postgres*) "$bin" migrate >&2 ;;  # serve refuses an unmigrated PostgreSQL database
esac
"$bin" serve > "$data/palisade.log" 2>&1 &
server=$!
stop() { kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 100); do
  curl -sf "$base/ready" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "palisade exited; see $data/palisade.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf "$base/ready" >/dev/null || { echo "not ready after 10 s; see $data/palisade.log" >&2; exit 1; }
echo "mfa.sh: $bin on $base, database ${PALISADE_DATABASE_URL%%://*}, redis ${PALISADE_REDIS_URL:-none}" >&2

"$python" "$here/mfa.py" --base "$base" "$@"
echo "{\"scenario\": \"server_rss_after\", \"vmrss_kb\": $(awk '/VmRSS/ {print $2}' "/proc/$server/status")}"
stop
trap - EXIT
rm -rf "$data"
