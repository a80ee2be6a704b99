#!/usr/bin/env bash
# Event ingestion: POST /monitoring/events (LOGIN_FAILURE reports spread over 1,000 users and 250
# addresses, every detector on) on the embedded default (SQLite), or on PostgreSQL + Redis when
# PALISADE_DATABASE_URL / PALISADE_REDIS_URL are set (the schema must exist: palisade migrate). Starts a
# release build on a free loopback port, makes an admin and a monitoring:write key through the CLI,
# drives wrk -t1 -c32 for 10 s, then prints how many events were stored, how many incidents opened, and
# how many records the detectors' queue dropped (from the log).
#
#   loadtest/monitoring_events.sh
set -euo pipefail
# shellcheck source=serve.sh
. "$(dirname "$0")/serve.sh" loadadmin
API_KEY=$("$bin" apikey create --user loadadmin --name load --scope monitoring:write --scope monitoring:read 2>/dev/null)
export API_KEY
wrk -t1 -c32 -d10s -s "$here/monitoring_events.lua" "http://127.0.0.1:$port/monitoring/events"
sleep 2
stored=$(curl -sf "http://127.0.0.1:$port/monitoring/events?type=LOGIN_FAILURE&limit=1" -H "x-api-key: $API_KEY" \
  | python3 -c 'import json,sys; e=json.load(sys.stdin)["events"]; print(e[0]["seq"] if e else 0)')
incidents=$(curl -sf "http://127.0.0.1:$port/monitoring/incidents?limit=500" -H "x-api-key: $API_KEY" \
  | python3 -c 'import json,sys; l=json.load(sys.stdin)["incidents"]; print(len(l), "incidents;", sum(i["occurrences"] for i in l), "findings")')
echo "last event seq: $stored; $incidents; queue drops logged: $(grep -c 'monitoring queue full' "$data/server.log" || true)"
