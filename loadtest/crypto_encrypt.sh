#!/usr/bin/env bash
# HTTP throughput of POST /crypto/encrypt (1 KiB, INTERNAL) on the embedded default (SQLite): starts a
# release build on a free loopback port with a temporary data directory, registers an owner, makes an
# API key with crypto:encrypt through the CLI, then drives wrk -t1 -c32 for 10 s, without and with an
# owner in the context (a derived key per call). Prints wrk's summaries.
#
#   loadtest/crypto_encrypt.sh
set -euo pipefail
# shellcheck source=serve.sh
. "$(dirname "$0")/serve.sh" loadapp
API_KEY=$("$bin" apikey create --user loadapp --name load --scope crypto:encrypt 2>/dev/null)
export API_KEY
for owner in 0 1; do
  echo "== owner=$owner"
  OWNER=$owner wrk -t1 -c32 -d10s -s "$here/crypto_encrypt.lua" "http://127.0.0.1:$port/crypto/encrypt"
done
