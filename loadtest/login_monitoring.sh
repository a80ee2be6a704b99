#!/usr/bin/env bash
# What monitoring costs a login: the same release build serving logins with the detectors on and off
# (PALISADE_MONITORING_DETECTORS), alternately, ROUNDS times each (default 3), on the embedded default
# (SQLite). Each round starts a fresh server, registers 200 accounts, then drives wrk -t2 -c16 for
# SECONDS (default 15) of logins with the right password (loadtest/login.lua) and prints one line:
# mode, logins/s, p99.
#
#   loadtest/login_monitoring.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${ROUNDS:-3}
seconds=${SECONDS_RUN:-15}
for round in $(seq 1 "$rounds"); do
  for mode in true false; do
    (
      export PALISADE_MONITORING_DETECTORS=$mode
      # shellcheck source=serve.sh
      . "$here/serve.sh" load-0
      seq 1 199 | xargs -P 8 -I{} curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/auth/register" \
        -H 'content-type: application/json' -d '{"username": "load-{}", "password": "Load-test-pass-1234!"}'
      out=$(wrk -t2 -c16 -d"${seconds}s" --latency -s "$here/login.lua" "http://127.0.0.1:$port/auth/login")
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
      errors=$(echo "$out" | awk '/Non-2xx/ {print $5}')
      echo "round $round detectors=$mode logins/s=$rps p99=$p99 non-2xx=${errors:-0}"
    )
  done
done
