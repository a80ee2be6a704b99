#!/usr/bin/env bash
# Drives a running Palisade with the peers' load driver (../shared/peers/drive.py: register 200 users,
# then login c=16 15 s, bearer GET c=32 10 s with wrk, refresh rotation c=16 10 s) and probes /health
# at 20/s during the login storm. Loopback only; every load is bounded in time.
#
#   loadtest/bench.sh http://127.0.0.1:8080 > results.jsonl
#
# Needs the driver's venv: ../shared/peers/setup-driver.sh (Python 3.11 + aiohttp; wrk optional).
set -euo pipefail
base=${1:-http://127.0.0.1:8080}
here=$(cd "$(dirname "$0")" && pwd)
peers=${PEERS_DIR:-$here/../../shared/peers}
python=${DRIVER_PYTHON:-$HOME/.cache/peers/driver/venv/bin/python}
probe_out=$(mktemp)

# Registering 200 users takes 1–3 s here; the probe starts after it, inside the 15 s login scenario.
( sleep "${PROBE_DELAY:-5}"; "$python" "$here/health_probe.py" --base "$base" --seconds 8 --rate 20 > "$probe_out" ) &
probe=$!
"$python" "$peers/drive.py" --target palisade --base "$base" --scenarios register,login,bearer,refresh --users "${USERS:-200}"
wait "$probe"
echo "{\"scenario\": \"health_during_login_storm\", \"probe\": $(cat "$probe_out")}"
rm -f "$probe_out"
