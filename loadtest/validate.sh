#!/usr/bin/env bash
# API-key validation load: POST /api-keys/validate with wrk (c=32, 10 s, loopback), validating a key
# that has minute/hour/day limits (so every check counts three windows in one hot-store round trip).
#
#   loadtest/validate.sh http://127.0.0.1:8080
set -euo pipefail
base=${1:-http://127.0.0.1:8080}
user="bench-$RANDOM$RANDOM"
password="correct-Horse-battery-9-staple"
curl -sf -X POST "$base/auth/register" -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$password\"}" >/dev/null
token=$(curl -sf -X POST "$base/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
make_key() {
  curl -sf -X POST "$base/auth/api-keys" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$1" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])'
}
caller=$(make_key '{"name":"gateway","scopes":["api-keys:validate"]}')
target=$(make_key '{"name":"target","scopes":["read"],"rate_limit":{"requests_per_minute":4000000000,"requests_per_hour":4000000000,"requests_per_day":4000000000}}')
script=$(mktemp --suffix .lua)
cat > "$script" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$caller"
wrk.body = '{"api_key":"$target","required_scopes":["read"]}'
LUA
wrk -t1 -c32 -d10s --latency -s "$script" "$base/api-keys/validate"
rm -f "$script"
