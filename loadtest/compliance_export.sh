#!/usr/bin/env bash
# Export and erasure of a user with a long history (issue #11). Starts a release build on a free
# loopback port (loadtest/serve.sh) on the embedded SQLite default, or on PostgreSQL when
# PALISADE_DATABASE_URL is set (an empty database: the script migrates it), with the detectors off
# (this measures the export, not detection) and a deletion delay of 1 s. Then:
#   1. gives user "subject" N audit events (default 100,000): security-event reports about them
#      (POST /monitoring/events with a monitoring:write key, 16 connections, loadtest/report_events.py);
#   2. exports their data (GET /compliance/export, their own token) 3 times, each after resetting the
#      server's peak-RSS mark (/proc/PID/clear_refs), and prints the time, the size and the server's
#      peak RSS (VmHWM) against its RSS before;
#   3. has them request their erasure and waits for the job: prints the audit records redacted and
#      the rows/s between the job's "erasure started" and "erasure completed" log lines.
#
#   loadtest/compliance_export.sh [events]
set -euo pipefail
events=${1:-100000}
export PALISADE_MONITORING_DETECTORS=false PALISADE_COMPLIANCE_DELETION_DELAY=1 PALISADE_LOG_FORMAT=json
if [ -n "${PALISADE_DATABASE_URL:-}" ]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  "${PALISADE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/palisade}" migrate > /dev/null
fi
# shellcheck source=serve.sh
. "$(dirname "$0")/serve.sh" loadadmin
base="http://127.0.0.1:$port"
"$bin" user grant-admin loadadmin > /dev/null
API_KEY=$("$bin" apikey create --user loadadmin --name load --scope monitoring:write 2>/dev/null)
login() {
  curl -sf -X POST "$base/auth/login" -H 'content-type: application/json' \
    -d "{\"username\": \"$1\", \"password\": \"Load-test-pass-1234!\"}"
}
curl -sf -X POST "$base/auth/register" -H 'content-type: application/json' \
  -d '{"username": "subject", "password": "Load-test-pass-1234!"}' > /dev/null
session=$(login subject)
token=$(echo "$session" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
user=$(echo "$session" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user_id"])')
admin=$(login loadadmin | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

started=$(date +%s.%N)
python3 "$here/report_events.py" "$base" "$API_KEY" "$user" "$events"
echo "loaded $events events about $user in $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s"

rss() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$server/status"; }
for run in 1 2 3; do
  echo 5 > "/proc/$server/clear_refs"
  before=$(rss VmRSS)
  out=$(curl -sf -o "$data/export.json" -w '%{time_total} %{size_download}' "$base/compliance/export" \
    -H "authorization: Bearer $token")
  count=$(python3 -c "import json; print(json.load(open('$data/export.json'))['audit_events_count'])")
  echo "export $run: ${out% *} s, ${out#* } bytes, $count audit events; server RSS before $((before / 1024)) MiB, peak during $(( $(rss VmHWM) / 1024 )) MiB"
done

request=$(curl -sf -X POST "$base/compliance/erasure" -H "authorization: Bearer $token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["request_id"])')
for _ in $(seq 1 600); do
  state=$(curl -sf "$base/compliance/erasure/$request" -H "authorization: Bearer $admin" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["state"], r["counts"]["audit_redacted"])')
  [ "${state% *}" = completed ] && break
  sleep 0.5
done
python3 - "$data/server.log" "$request" "$state" <<'PY'
import json, sys
from datetime import datetime
log, request, state = sys.argv[1], sys.argv[2], sys.argv[3]
times = {}
for line in open(log):
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    fields = entry.get("fields", {})
    if fields.get("request") == request and fields.get("message") in ("erasure started", "erasure completed"):
        times.setdefault(fields["message"], datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")))
redacted = int(state.split()[1])
took = (times["erasure completed"] - times["erasure started"]).total_seconds()
print(f"erasure: {state.split()[0]}, {redacted} audit records redacted in {took:.2f} s: {redacted / took:,.0f} records/s")
PY
