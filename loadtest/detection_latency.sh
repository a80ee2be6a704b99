#!/usr/bin/env bash
# Detection latency, from the record that crosses the brute-force threshold to the incident (p50/p99),
# on the embedded default (SQLite), or on PostgreSQL + Redis when PALISADE_DATABASE_URL /
# PALISADE_REDIS_URL are set (the schema must exist: palisade migrate). With LOAD=1, wrk drives event
# ingestion at full speed (loadtest/monitoring_events.lua, -c16) for the whole run, so the latency
# includes the queue under saturation. Automatic responses are off (nothing here should get blocked).
#
#   loadtest/detection_latency.sh            # idle server
#   LOAD=1 loadtest/detection_latency.sh     # under saturating ingestion
set -euo pipefail
export PALISADE_MONITORING_RESPONSES=none
# shellcheck source=serve.sh
. "$(dirname "$0")/serve.sh" loadadmin
API_KEY=$("$bin" apikey create --user loadadmin --name load --scope monitoring:write --scope monitoring:read 2>/dev/null)
export API_KEY
seconds=${SECONDS_RUN:-20}
if [ "${LOAD:-0}" = 1 ]; then
  wrk -t1 -c16 -d"$((seconds + 5))s" -s "$here/monitoring_events.lua" "http://127.0.0.1:$port/monitoring/events" > "$data/wrk.txt" &
  load=$!
fi
python3 "$here/detection_latency.py" --base "http://127.0.0.1:$port" --key "$API_KEY" --attacks "${ATTACKS:-200}" --seconds "$seconds"
if [ -n "${load:-}" ]; then wait "$load"; grep -E "Requests/sec|Non-2xx" "$data/wrk.txt" || true; fi
