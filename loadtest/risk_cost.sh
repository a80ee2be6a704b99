#!/usr/bin/env bash
# What risk scoring costs a login and session binding costs a bearer request, over HTTP: the peers'
# load driver (../shared/peers) against Palisade twice per round, alternating, on the embedded
# SQLite default —
#   on:  the defaults (PALISADE_RISK_ENABLED=true, PALISADE_SESSION_BINDING=device)
#   off: PALISADE_RISK_ENABLED=false PALISADE_SESSION_BINDING=off
# Each run registers 200 users, then logs in at concurrency 16 for 15 s and drives a bearer GET
# (/auth/profile) at concurrency 32 for 10 s with wrk. Rounds alternate on/off so drift in the
# machine falls on both. No GeoIP database: the geo lookups are measured in process
# (`cargo bench -p palisade-server --bench risk_assess`).
#
#   loadtest/risk_cost.sh [rounds]      # default 2; JSON lines in target/risk_cost.jsonl
#
# Needs a release build ($CARGO_TARGET_DIR/release/palisade or target/release/palisade) and the
# driver's venv (../shared/peers/setup-driver.sh), wrk on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
peers=${PEERS_DIR:-$root/../shared/peers}
bin=${PALISADE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/palisade}
out=${RESULTS:-$root/target/risk_cost.jsonl}
rounds=${1:-2}
mkdir -p "$(dirname "$out")"
: > "$out"
run() { # label, then env assignments
  local label=$1; shift
  local tmp
  tmp=$(mktemp)
  env "$@" RESULTS="$tmp" PALISADE_BIN="$bin" PALISADE_START="$peers/start-palisade.sh" SKIP_SETUP=1 \
    DRIVE_ARGS="--scenarios register,login,bearer" "$peers/run-all.sh" palisade >&2
  sed "s/^{/{\"variant\": \"$label\", /" "$tmp" >> "$out"
  rm -f "$tmp"
}
for _ in $(seq 1 "$rounds"); do
  run on PALISADE_RISK_ENABLED=true PALISADE_SESSION_BINDING=device
  run off PALISADE_RISK_ENABLED=false PALISADE_SESSION_BINDING=off
done
python3 - "$out" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for scenario in ("login", "bearer"):
    for variant in ("on", "off"):
        r = [x for x in rows if x.get("scenario") == scenario and x.get("variant") == variant]
        rps = [x["ok_rps"] for x in r]
        errs = sum(x.get("errors", 0) for x in r)
        p99 = [x.get("p99_ms") for x in r]
        print(f"{scenario:6} {variant:3} ok req/s per run {rps} (median {statistics.median(rps):.1f}), p99 ms {p99}, errors {errs}")
PY
