#!/usr/bin/env bash
# Report generation time on a store with 100,000 users (issue #11): starts a release build on a free
# loopback port (loadtest/serve.sh) on the embedded SQLite default, or on PostgreSQL when
# PALISADE_DATABASE_URL is set (an empty database: the script migrates it), makes an administrator
# through the CLI, then seeds the users directly in SQL for speed — the service would spend an Argon2
# derivation on each, about an hour for 100k on 2 cores, and the reports only count rows:
#   - N users (default 100,000) with an Argon2id-shaped hash, 20 of them administrators, 10 of whom
#     hold a confirmed TOTP factor (the factor's sealed text is a placeholder: nothing decrypts it);
#   - a data_processing consent given by 60% of the users (one consent_texts row, one ledger row each).
# Then it asks every standard's report over HTTP (GET /compliance/reports/{standard}, JSON, the
# default 30-day range) RUNS times and prints the first (cold) and the median wall time per standard,
# as curl measures it (the whole request: the counting queries, the walk of the audit chain, the
# keyring and signing-key status, the evaluation and the audit record of the report).
#
#   loadtest/compliance_report.sh [users] [runs]      # defaults 100000 and 5
#
# The audit chain holds only what the server wrote itself (a few dozen records): seeding it in SQL is
# impossible (every record is MACed), and its walk costs the same per record as `palisade audit verify`.
set -euo pipefail
users=${1:-100000}
runs=${2:-5}
export COMPLIANCE_PCI_DSS_ENABLED=true
if [ -n "${PALISADE_DATABASE_URL:-}" ]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  "${PALISADE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/palisade}" migrate > /dev/null
fi
# shellcheck source=serve.sh
. "$(dirname "$0")/serve.sh" loadadmin
"$bin" user grant-admin loadadmin > /dev/null
token=$(curl -sf -X POST "http://127.0.0.1:$port/auth/login" -H 'content-type: application/json' \
  -d '{"username": "loadadmin", "password": "Load-test-pass-1234!"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

started=$(date +%s.%N)
if [ -n "${PALISADE_DATABASE_URL:-}" ]; then
  psql -q -v ON_ERROR_STOP=1 "$PALISADE_DATABASE_URL" <<SQL
INSERT INTO users (id, username, password_hash, password_changed_at, created_at, locked, admin)
SELECT md5('seed' || i)::uuid, 'seed' || i, '\$argon2id\$v=19\$m=19456,t=2,p=1\$c2FsdHNhbHQ\$aGFzaA', now(), now(),
       false, i <= 20
FROM generate_series(1, $users) AS i;
INSERT INTO mfa_factors (id, user_id, kind, sealed, created_at, confirmed_at)
SELECT md5('factor' || i)::uuid, md5('seed' || i)::uuid, 'totp', 'v1.seed', now(), now() FROM generate_series(1, 10) AS i;
INSERT INTO consent_texts (hash, consent_type, version, text, recorded_at)
VALUES (decode(md5('seed-text') || md5('seed-text'), 'hex'), 'data_processing', 'seed', 'Seeded consent.', now());
INSERT INTO consents (id, user_id, consent_type, seq, action, version, text_hash, method, at, valid_until)
SELECT md5('consent' || i)::uuid, md5('seed' || i)::uuid, 'data_processing', 1, 'given', 'seed',
       decode(md5('seed-text') || md5('seed-text'), 'hex'), 'seed', now(), now() + interval '365 days'
FROM generate_series(1, $users) AS i WHERE i % 5 < 3;
ANALYZE;
SQL
else
  python3 - "$data/palisade.db" "$users" <<'PY'
import sqlite3, sys, time, uuid
db, n = sys.argv[1], int(sys.argv[2])
now = int(time.time() * 1_000_000)
year = 365 * 86_400 * 1_000_000
hash_ = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"
con = sqlite3.connect(db, timeout=30)
ids = [str(uuid.uuid5(uuid.NAMESPACE_OID, f"seed{i}")) for i in range(1, n + 1)]
with con:
    con.executemany(
        "INSERT INTO users (id, username, password_hash, password_changed_at, created_at, locked, admin) "
        "VALUES (?, ?, ?, ?, ?, 0, ?)",
        ((ids[i - 1], f"seed{i}", hash_, now, now, 1 if i <= 20 else 0) for i in range(1, n + 1)),
    )
    con.executemany(
        "INSERT INTO mfa_factors (id, user_id, kind, sealed, created_at, confirmed_at) VALUES (?, ?, 'totp', 'v1.seed', ?, ?)",
        ((str(uuid.uuid4()), ids[i], now, now) for i in range(10)),
    )
    text_hash = bytes(32)
    con.execute(
        "INSERT INTO consent_texts (hash, consent_type, version, text, recorded_at) "
        "VALUES (?, 'data_processing', 'seed', 'Seeded consent.', ?)",
        (text_hash, now),
    )
    con.executemany(
        "INSERT INTO consents (id, user_id, consent_type, seq, action, version, text_hash, method, at, valid_until) "
        "VALUES (?, ?, 'data_processing', 1, 'given', 'seed', ?, 'seed', ?, ?)",
        ((str(uuid.uuid4()), ids[i - 1], text_hash, now, now + year) for i in range(1, n + 1) if i % 5 < 3),
    )
con.execute("ANALYZE")
con.close()
PY
fi
echo "seeded $users users in $(python3 -c "import time; print(f'{time.time() - $started:.1f}')") s" >&2

for standard in GDPR HIPAA PCI_DSS SOX ISO27001; do
  times=()
  for _ in $(seq 1 "$runs"); do
    times+=("$(curl -s -o "$data/report.json" -w '%{time_total}' -H "authorization: Bearer $token" \
      "http://127.0.0.1:$port/compliance/reports/$standard")")
  done
  python3 - "$standard" "$data/report.json" "${times[@]}" <<'PY'
import json, statistics, sys
standard, path, times = sys.argv[1], sys.argv[2], [float(t) * 1000 for t in sys.argv[3:]]
report = json.load(open(path))
coverage = next(c for c in report["controls"] if c["id"] == "admin_mfa")["evidence"]["query"]["result"]
chain = next(c for c in report["controls"] if c["id"] == "audit_chain")["evidence"]["query"]["result"]
print(f"{standard:9} first {times[0]:7.1f} ms  median {statistics.median(times):7.1f} ms  "
      f"({report['requirements_met']}/{report['requirements_total']} met; admins with MFA {coverage}; {chain.split(';')[0]})")
PY
done
