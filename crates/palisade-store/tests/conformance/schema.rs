//! Migrations and the schema's constraints, on each SQL backend; URL handling.

use std::collections::BTreeSet;
use std::sync::Arc;

use palisade_core::audit::AuditRecord;
use palisade_core::clock::{Clock, ManualClock};
use palisade_core::crypto::{DataClassification, KeyPurpose, WrappedDataKey};
use palisade_core::store::{HotKey, StoreError};
use sqlx::Connection;
use time::Duration;

use crate::support::{TestDatabase, conformance};

/// A database that exists but has not been migrated.
pub struct SchemaHarness {
    database: TestDatabase,
}

impl SchemaHarness {
    pub async fn sqlite() -> Option<Self> {
        Some(Self { database: TestDatabase::sqlite() })
    }

    pub async fn postgres() -> Option<Self> {
        Some(Self { database: TestDatabase::postgres().await? })
    }

    fn is_sqlite(&self) -> bool {
        self.database.sqlite_path().is_some()
    }

    async fn connect(&self) -> palisade_store::Stores {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
        palisade_store::connect(self.database.url(), None, clock, 4).await.unwrap()
    }
}

conformance!(
    SchemaHarness,
    [sqlite, postgres],
    [
        migrate_applies_once_and_check_schema_agrees,
        check_schema_refuses_changed_or_unknown_migrations,
        constraints_are_enforced_by_the_database,
        key_families_are_exactly_the_known_ones,
        account_constraints_are_enforced_by_the_database,
    ]
);

pub async fn migrate_applies_once_and_check_schema_agrees(h: &SchemaHarness) {
    let stores = h.connect().await;
    let refused = stores.check_schema().await.expect_err("an empty database is not up to date");
    assert!(
        refused.to_string().contains("0001 foundation") && refused.to_string().contains("palisade migrate"),
        "{refused}"
    );

    let applied = palisade_store::migrate(h.database.url()).await.unwrap();
    let names: Vec<String> = applied.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "0001 foundation",
            "0002 accounts",
            "0003 api keys",
            "0004 admin",
            "0005 mfa",
            "0006 passkeys",
            "0007 devices risk",
            "0008 key families",
            "0009 key retirement",
            "0010 reencryption",
            "0011 security events",
            "0012 incidents",
            "0013 incident actions",
            "0014 alerts",
            "0015 compliance",
            "0016 oauth clients",
            "0017 oauth consents"
        ]
    );
    assert!(palisade_store::migrate(h.database.url()).await.unwrap().is_empty(), "a second run applies nothing");
    assert!(stores.migrate().await.unwrap().is_empty());
    stores.check_schema().await.unwrap();
    // The schema is usable straight away.
    let key = WrappedDataKey {
        id: uuid::Uuid::now_v7(),
        purpose: KeyPurpose::Audit,
        version: 1,
        provider: "local:00000000".into(),
        wrapped: vec![1; 60],
        created_at: time::OffsetDateTime::UNIX_EPOCH,
    };
    assert!(stores.durable.insert_data_key(&key).await.unwrap());
}

pub async fn check_schema_refuses_changed_or_unknown_migrations(h: &SchemaHarness) {
    let stores = h.connect().await;
    stores.migrate().await.unwrap();
    let (changed, unknown) = if h.is_sqlite() {
        (
            "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 1",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, X'00', 0)",
        )
    } else {
        (
            "UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea WHERE version = 1",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, '\\x00'::bytea, 0)",
        )
    };
    h.database.execute(unknown).await.unwrap();
    let refused = stores.check_schema().await.expect_err("a migration this build does not know");
    assert!(refused.to_string().contains("9999"), "{refused}");
    h.database.execute("DELETE FROM _sqlx_migrations WHERE version = 9999").await.unwrap();
    stores.check_schema().await.unwrap();
    h.database.execute(changed).await.unwrap();
    let refused = stores.check_schema().await.expect_err("a migration changed after it was applied");
    assert!(refused.to_string().contains("changed"), "{refused}");
}

pub async fn constraints_are_enforced_by_the_database(h: &SchemaHarness) {
    h.connect().await.migrate().await.unwrap();
    let (bad_purpose, bad_version, bad_outcome) = if h.is_sqlite() {
        (
            "INSERT INTO data_keys VALUES ('0190a000-0000-7000-8000-000000000001', 'signing', 1, 'p', X'01', 0)",
            "INSERT INTO data_keys VALUES ('0190a000-0000-7000-8000-000000000002', 'data', 0, 'p', X'01', 0)",
            "INSERT INTO audit_log (seq, id, at, kind, outcome, details, key_id, prev_mac, mac) VALUES \
             (1, '0190a000-0000-7000-8000-000000000003', 0, 'k', 'maybe', '{}', \
              '0190a000-0000-7000-8000-000000000004', zeroblob(32), zeroblob(32))",
        )
    } else {
        (
            "INSERT INTO data_keys VALUES ('0190a000-0000-7000-8000-000000000001', 'signing', 1, 'p', '\\x01', now())",
            "INSERT INTO data_keys VALUES ('0190a000-0000-7000-8000-000000000002', 'data', 0, 'p', '\\x01', now())",
            "INSERT INTO audit_log (seq, id, at, kind, outcome, details, key_id, prev_mac, mac) VALUES \
             (1, '0190a000-0000-7000-8000-000000000003', now(), 'k', 'maybe', '{}', \
              '0190a000-0000-7000-8000-000000000004', decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))",
        )
    };
    let violations = [
        ("a purpose that names no key family", bad_purpose),
        ("a version below 1", bad_version),
        ("an outcome outside ('success', 'failure')", bad_outcome),
        ("an entry with neither value nor counter", "INSERT INTO hot_entries (key, expires_at_ms) VALUES ('k', 1)"),
        ("a counter below 1", "INSERT INTO hot_entries (key, counter, expires_at_ms) VALUES ('k', 0, 1)"),
        ("a member of no set", "INSERT INTO hot_set_members (key, member) VALUES ('nowhere', 'm')"),
        ("text in an integer column", "INSERT INTO hot_entries (key, counter, expires_at_ms) VALUES ('k', 1, 'soon')"),
    ];
    for (what, sql) in violations {
        assert!(h.database.execute(sql).await.is_err(), "the schema accepts {what}");
    }
    // A well-formed row goes in, so the refusals above are about the constraints.
    h.database.execute("INSERT INTO hot_entries (key, counter, expires_at_ms) VALUES ('k', 1, 1)").await.unwrap();
}

/// Writes a `data_keys` row of `purpose` around the store; the id is fresh, the version 1.
async fn insert_raw_data_key(database: &TestDatabase, purpose: &str) -> Result<u64, sqlx::Error> {
    let id = uuid::Uuid::now_v7();
    match database {
        TestDatabase::Sqlite { url, .. } => {
            let mut conn = sqlx::SqliteConnection::connect(url).await?;
            let done = sqlx::query("INSERT INTO data_keys VALUES ($1, $2, 1, 'p', X'01', 0)")
                .bind(id.hyphenated().to_string())
                .bind(purpose)
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            Ok(done.rows_affected())
        }
        TestDatabase::Postgres(db) => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await?;
            let done = sqlx::query("INSERT INTO data_keys VALUES ($1, $2, 1, 'p', '\\x01', now())")
                .bind(id)
                .bind(purpose)
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            Ok(done.rows_affected())
        }
    }
}

pub async fn key_families_are_exactly_the_known_ones(h: &SchemaHarness) {
    h.connect().await.migrate().await.unwrap();
    let hex32 = "0123456789abcdef0123456789abcdef";
    let mut accepted: Vec<String> = vec!["data".into(), "audit".into(), format!("user:{hex32}")];
    accepted.extend(DataClassification::ALL.map(|class| KeyPurpose::Class(class).name().into_owned()));
    assert!(accepted.contains(&"class:top_secret".to_owned()), "{accepted:?}");
    for purpose in &accepted {
        assert_eq!(insert_raw_data_key(&h.database, purpose).await.unwrap(), 1, "the schema refuses {purpose:?}");
    }
    let refused = [
        "class:nonsense".to_owned(),
        "user:XYZ".to_owned(),
        "user:".to_owned(),
        format!("user:{}", hex32.to_uppercase()),
        format!("user:{}", &hex32[1..]),
        format!("user:{hex32}0"),
        format!("user:{hex32}\n"),
        format!("user:{}g", &hex32[1..]),
        format!("user:{}é", &hex32[1..]),
        format!("user:{}", uuid::Uuid::now_v7().hyphenated()),
        format!("USER:{hex32}"),
        format!(" user:{hex32}"),
        "class:TOP_SECRET".to_owned(),
        "class:".to_owned(),
        "Data".to_owned(),
        "data ".to_owned(),
        "signing".to_owned(),
        String::new(),
    ];
    for purpose in &refused {
        assert!(insert_raw_data_key(&h.database, purpose).await.is_err(), "the schema accepts {purpose:?}");
    }
    let families = h.database.fetch_texts("SELECT purpose FROM data_keys ORDER BY purpose").await.unwrap();
    assert_eq!(families.len(), accepted.len(), "{families:?}");
}

pub async fn account_constraints_are_enforced_by_the_database(h: &SchemaHarness) {
    h.connect().await.migrate().await.unwrap();
    // (what, SQLite, PostgreSQL). Ids: ...10 alice, ...11 bob (users); ...20 a family of alice's
    // session ...30.
    let setup = [
        (
            "INSERT INTO users VALUES \
             ('0190a000-0000-7000-8000-000000000010', 'alice', 'alice@example.com', 'h', 0, 0, 0, 0)",
            "INSERT INTO users VALUES \
             ('0190a000-0000-7000-8000-000000000010', 'alice', 'alice@example.com', 'h', now(), now(), false, false)",
        ),
        (
            "INSERT INTO users VALUES ('0190a000-0000-7000-8000-000000000011', 'bob', NULL, 'h', 0, 0, 0, 0)",
            "INSERT INTO users VALUES ('0190a000-0000-7000-8000-000000000011', 'bob', NULL, 'h', now(), now(), false, false)",
        ),
        (
            "INSERT INTO refresh_families (id, user_id, session_id, created_at) VALUES \
             ('0190a000-0000-7000-8000-000000000020', '0190a000-0000-7000-8000-000000000010', \
              '0190a000-0000-7000-8000-000000000030', 0)",
            "INSERT INTO refresh_families (id, user_id, session_id, created_at) VALUES \
             ('0190a000-0000-7000-8000-000000000020', '0190a000-0000-7000-8000-000000000010', \
              '0190a000-0000-7000-8000-000000000030', now())",
        ),
    ];
    let violations = [
        (
            "a username longer than 64 characters",
            "INSERT INTO users VALUES \
             ('0190a000-0000-7000-8000-000000000012', printf('%.65c', 'x'), NULL, 'h', 0, 0, 0, 0)",
            "INSERT INTO users VALUES \
             ('0190a000-0000-7000-8000-000000000012', repeat('x', 65), NULL, 'h', now(), now(), false, false)",
        ),
        (
            "an e-mail address taken by another user",
            "UPDATE users SET email = 'alice@example.com' WHERE username = 'bob'",
            "UPDATE users SET email = 'alice@example.com' WHERE username = 'bob'",
        ),
        (
            "history of no user",
            "INSERT INTO password_history VALUES ('0190a000-0000-7000-8000-000000000019', 1, 'h', 0)",
            "INSERT INTO password_history VALUES ('0190a000-0000-7000-8000-000000000019', 1, 'h', now())",
        ),
        (
            "a revocation reason outside the known ones",
            "UPDATE refresh_families SET revoked_at = 1, revoked_reason = 'expired'",
            "UPDATE refresh_families SET revoked_at = now(), revoked_reason = 'expired'",
        ),
        (
            "a revocation without a reason",
            "UPDATE refresh_families SET revoked_at = 1",
            "UPDATE refresh_families SET revoked_at = now()",
        ),
        (
            "a token hash of 31 bytes",
            "INSERT INTO refresh_tokens VALUES (zeroblob(31), '0190a000-0000-7000-8000-000000000020', NULL, \
             '0190a000-0000-7000-8000-000000000010', '0190a000-0000-7000-8000-000000000030', 0, 1, NULL)",
            "INSERT INTO refresh_tokens VALUES \
             (decode(repeat('00', 31), 'hex'), '0190a000-0000-7000-8000-000000000020', \
             NULL, '0190a000-0000-7000-8000-000000000010', '0190a000-0000-7000-8000-000000000030', \
             now(), now() + interval '1 hour', NULL)",
        ),
        (
            "a token whose user is not its family's",
            "INSERT INTO refresh_tokens VALUES (zeroblob(32), '0190a000-0000-7000-8000-000000000020', NULL, \
             '0190a000-0000-7000-8000-000000000011', '0190a000-0000-7000-8000-000000000030', 0, 1, NULL)",
            "INSERT INTO refresh_tokens VALUES \
             (decode(repeat('00', 32), 'hex'), '0190a000-0000-7000-8000-000000000020', \
             NULL, '0190a000-0000-7000-8000-000000000011', '0190a000-0000-7000-8000-000000000030', \
             now(), now() + interval '1 hour', NULL)",
        ),
        (
            "a token that expires before it is issued",
            "INSERT INTO refresh_tokens VALUES (zeroblob(32), '0190a000-0000-7000-8000-000000000020', NULL, \
             '0190a000-0000-7000-8000-000000000010', '0190a000-0000-7000-8000-000000000030', 1, 0, NULL)",
            "INSERT INTO refresh_tokens VALUES \
             (decode(repeat('00', 32), 'hex'), '0190a000-0000-7000-8000-000000000020', \
             NULL, '0190a000-0000-7000-8000-000000000010', '0190a000-0000-7000-8000-000000000030', \
             now(), now() - interval '1 hour', NULL)",
        ),
    ];
    let sqlite = h.is_sqlite();
    for (on_sqlite, on_postgres) in setup {
        h.database.execute(if sqlite { on_sqlite } else { on_postgres }).await.unwrap();
    }
    for (what, on_sqlite, on_postgres) in violations {
        assert!(
            h.database.execute(if sqlite { on_sqlite } else { on_postgres }).await.is_err(),
            "the schema accepts {what}"
        );
    }
    // Well-formed rows go in, so the refusals above are about the constraints.
    let well_formed = if sqlite {
        "INSERT INTO refresh_tokens VALUES (zeroblob(32), '0190a000-0000-7000-8000-000000000020', NULL, \
         '0190a000-0000-7000-8000-000000000010', '0190a000-0000-7000-8000-000000000030', 0, 1, NULL)"
    } else {
        "INSERT INTO refresh_tokens VALUES \
         (decode(repeat('00', 32), 'hex'), '0190a000-0000-7000-8000-000000000020', \
         NULL, '0190a000-0000-7000-8000-000000000010', '0190a000-0000-7000-8000-000000000030', \
         now(), now() + interval '1 hour', NULL)"
    };
    h.database.execute(well_formed).await.unwrap();
    let revoke = if sqlite {
        "UPDATE refresh_families SET revoked_at = 1, revoked_reason = 'reuse'"
    } else {
        "UPDATE refresh_families SET revoked_at = now(), revoked_reason = 'reuse'"
    };
    assert_eq!(h.database.execute(revoke).await.unwrap(), 1);
    // Deleting the user takes their families and tokens with it.
    assert_eq!(h.database.execute("DELETE FROM users WHERE username = 'alice'").await.unwrap(), 1);
    assert_eq!(h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM refresh_tokens").await.unwrap(), "0");
}

#[test]
fn migrations_have_the_same_numbers_and_names_in_every_dialect() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let list = |dialect: &str| -> BTreeSet<String> {
        std::fs::read_dir(root.join(dialect))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let (sqlite, postgres) = (list("sqlite"), list("postgres"));
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres, "migrations/sqlite and migrations/postgres must hold the same files");
    let mut versions = BTreeSet::new();
    for name in &sqlite {
        let (number, rest) = name.split_once('_').unwrap_or_else(|| panic!("{name}: expected NNNN_name.sql"));
        assert!(number.len() == 4 && number.chars().all(|c| c.is_ascii_digit()), "{name}: expected NNNN_name.sql");
        assert!(rest.ends_with(".sql") && rest.len() > 4, "{name}: expected NNNN_name.sql");
        assert!(versions.insert(number.to_owned()), "{name}: number used twice");
    }
}

#[tokio::test]
async fn unsupported_urls_name_the_expected_forms_without_the_password() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
    for url in ["mysql://admin:hunter2@db.internal/palisade", "hunter2", "://admin:hunter2@x", ""] {
        let Err(e) = palisade_store::connect(url, None, clock.clone(), 1).await else { panic!("{url:?} was accepted") };
        let message = e.to_string();
        assert!(matches!(e, StoreError::Other(_)), "{message}");
        assert!(!message.contains("hunter2"), "the error leaks the URL: {message}");
        assert!(message.contains("sqlite://") && message.contains("postgres://"), "{message}");
    }
    let e = palisade_store::migrate("redis://:hunter2@127.0.0.1").await.unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_and_the_password_stays_hidden() {
    let port = closed_port().await;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
    let url = format!("postgres://palisade:hunter2@127.0.0.1:{port}/palisade");
    let started = std::time::Instant::now();
    let Err(e) = palisade_store::connect(&url, None, clock, 2).await else { panic!("connected to a closed port") };
    assert!(e.is_unavailable(), "{e:?}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn sqlite_file_gets_its_directory_and_write_ahead_logging() {
    let database = TestDatabase::sqlite();
    let path = database.sqlite_path().unwrap().clone();
    assert!(!path.parent().unwrap().exists());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
    let stores = palisade_store::connect(database.url(), None, clock, 4).await.unwrap();
    stores.migrate().await.unwrap();
    assert!(path.exists(), "the database file and its directories are created");
    assert_eq!(database.fetch_text("PRAGMA journal_mode").await.unwrap(), "wal");
}

#[tokio::test]
async fn sqlite_in_memory_holds_everything_on_one_connection() {
    let clock = Arc::new(ManualClock::fixed());
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let stores = palisade_store::connect("sqlite::memory:", None, dyn_clock, 8).await.unwrap();
    assert_eq!(stores.migrate().await.unwrap().len(), 17);
    stores.check_schema().await.unwrap();
    let key = HotKey::new("memory", "k");
    stores.hot.put(&key, b"v", Duration::seconds(1)).await.unwrap();
    assert_eq!(stores.hot.get(&key).await.unwrap().as_deref(), Some(&b"v"[..]));
    clock.advance(Duration::seconds(1));
    assert_eq!(stores.hot.get(&key).await.unwrap(), None);
    // A second in-memory store is a different database.
    let other = palisade_store::connect("sqlite::memory:", None, clock, 1).await.unwrap();
    assert_eq!(other.migrate().await.unwrap().len(), 17);
}

/// A local port with nothing listening on it.
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Every SQLite migration, for building a database as an older Palisade left it (`run_to`).
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// A SQLite database as 0001–0007 left it, with a row in every table that refers to a data key:
/// keys ...01 (data v1, referred to by an API key and a backup code), ...02 (audit v1, sealing an
/// audit record) and ...03 (data v2, referred to by nothing); user ...10. The connection enforces
/// foreign keys, as the store's do.
async fn sqlite_at_0007_with_references() -> (TestDatabase, sqlx::SqliteConnection) {
    let database = TestDatabase::sqlite();
    let path = database.sqlite_path().unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true).foreign_keys(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    SQLITE_MIGRATIONS.run_to(7, &mut conn).await.unwrap();
    for sql in [
        "INSERT INTO data_keys VALUES ('0190a000-0000-7000-8000-000000000001', 'data', 1, 'local:0123abcd', X'0101', 11)",
        "INSERT INTO data_keys VALUES ('0190a000-0000-7000-8000-000000000002', 'audit', 1, 'local:0123abcd', X'0202', 22)",
        "INSERT INTO data_keys VALUES ('0190a000-0000-7000-8000-000000000003', 'data', 2, 'local:0123abcd', X'0303', 33)",
        "INSERT INTO users VALUES ('0190a000-0000-7000-8000-000000000010', 'alice', NULL, 'h', 0, 0, 0, 0)",
        "INSERT INTO audit_log (seq, id, at, kind, outcome, details, key_id, prev_mac, mac) VALUES \
         (1, '0190a000-0000-7000-8000-000000000020', 0, 'system.started', 'success', '{}', \
          '0190a000-0000-7000-8000-000000000002', zeroblob(32), randomblob(32))",
        "INSERT INTO api_keys (id, owner, name, secret_hash, hash_key_id, scopes, ip_allow, created_at) VALUES \
         ('0190a000-0000-7000-8000-000000000030', '0190a000-0000-7000-8000-000000000010', 'ci', randomblob(32), \
          '0190a000-0000-7000-8000-000000000001', '[]', '[]', 0)",
        "INSERT INTO mfa_backup_codes (user_id, idx, code_hash, hash_key_id, created_at) VALUES \
         ('0190a000-0000-7000-8000-000000000010', 0, randomblob(32), '0190a000-0000-7000-8000-000000000001', 0)",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    (database, conn)
}

/// Every row of data_keys and of the tables that refer to it, as text.
async fn sqlite_key_rows(database: &TestDatabase) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT id || '|' || purpose || '|' || version || '|' || provider || '|' || hex(wrapped) || '|' || created_at \
         FROM data_keys ORDER BY id",
        "SELECT seq || '|' || id || '|' || key_id || '|' || hex(mac) FROM audit_log ORDER BY seq",
        "SELECT id || '|' || hash_key_id || '|' || hex(secret_hash) FROM api_keys ORDER BY id",
        "SELECT user_id || '|' || idx || '|' || hash_key_id || '|' || hex(code_hash) FROM mfa_backup_codes ORDER BY idx",
    ] {
        rows.extend(database.fetch_texts(sql).await.unwrap());
    }
    rows
}

fn audit_record_sealed_by(key_id: uuid::Uuid, seq: i64) -> AuditRecord {
    AuditRecord {
        seq,
        id: uuid::Uuid::now_v7(),
        at: time::OffsetDateTime::UNIX_EPOCH,
        kind: "system.started".into(),
        outcome: "success".into(),
        actor: None,
        subject: None,
        ip: None,
        user_agent: None,
        request_id: None,
        details: "{}".into(),
        key_id,
        prev_mac: vec![0; 32],
        mac: vec![1; 32],
        personal: None,
        redacted_at: None,
    }
}

#[tokio::test]
async fn sqlite_0008_rebuilds_data_keys_keeping_every_row_and_reference() {
    let (database, conn) = sqlite_at_0007_with_references().await;
    conn.close().await.unwrap();
    let before = sqlite_key_rows(&database).await;
    assert_eq!(before.len(), 6, "{before:?}");

    let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
    let stores = palisade_store::connect(database.url(), None, clock, 1).await.unwrap();
    let applied: Vec<String> = stores.migrate().await.unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(
        applied,
        [
            "0008 key families",
            "0009 key retirement",
            "0010 reencryption",
            "0011 security events",
            "0012 incidents",
            "0013 incident actions",
            "0014 alerts",
            "0015 compliance",
            "0016 oauth clients",
            "0017 oauth consents"
        ]
    );
    stores.check_schema().await.unwrap();

    assert_eq!(sqlite_key_rows(&database).await, before, "every row survived, byte for byte");
    assert_eq!(database.fetch_texts("PRAGMA foreign_key_check").await.unwrap(), Vec::<String>::new());
    assert_eq!(database.fetch_text("PRAGMA integrity_check").await.unwrap(), "ok");
    // The rebuilt table is STRICT, its stand-in is gone, and the references still name it.
    assert_eq!(
        database.fetch_text("SELECT CAST(strict AS TEXT) FROM pragma_table_list('data_keys')").await.unwrap(),
        "1"
    );
    assert_eq!(
        database
            .fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM sqlite_schema WHERE name LIKE 'data_keys_%'")
            .await
            .unwrap(),
        "0"
    );
    for table in [
        "SELECT \"table\" FROM pragma_foreign_key_list('audit_log')",
        "SELECT \"table\" FROM pragma_foreign_key_list('api_keys') WHERE \"from\" = 'hash_key_id'",
        "SELECT \"table\" FROM pragma_foreign_key_list('mfa_backup_codes') WHERE \"from\" = 'hash_key_id'",
    ] {
        assert_eq!(database.fetch_text(table).await.unwrap(), "data_keys", "{table}");
    }

    // The store's own connection, the one that ran the migration, enforces foreign keys again.
    let unknown_key = audit_record_sealed_by(uuid::Uuid::now_v7(), 2);
    assert!(stores.durable.try_append_audit(&unknown_key).await.is_err(), "a record sealed by no key");
    let sealed = audit_record_sealed_by(uuid::Uuid::parse_str("0190a000-0000-7000-8000-000000000002").unwrap(), 2);
    assert!(stores.durable.try_append_audit(&sealed).await.unwrap(), "a record sealed by the kept audit key");
    // And so does a fresh one, from both sides of every reference.
    let dangling = [
        "INSERT INTO audit_log (seq, id, at, kind, outcome, details, key_id, prev_mac, mac) VALUES \
         (3, '0190a000-0000-7000-8000-000000000021', 0, 'k', 'success', '{}', \
          '0190a000-0000-7000-8000-0000000000ff', zeroblob(32), zeroblob(32))",
        "INSERT INTO mfa_backup_codes (user_id, idx, code_hash, hash_key_id, created_at) VALUES \
         ('0190a000-0000-7000-8000-000000000010', 1, zeroblob(32), '0190a000-0000-7000-8000-0000000000ff', 0)",
        "UPDATE api_keys SET hash_key_id = '0190a000-0000-7000-8000-0000000000ff'",
        "DELETE FROM data_keys WHERE id = '0190a000-0000-7000-8000-000000000001'",
        "DELETE FROM data_keys WHERE id = '0190a000-0000-7000-8000-000000000002'",
    ];
    for sql in dangling {
        assert!(database.execute(sql).await.is_err(), "a dangling reference: {sql}");
    }
    assert_eq!(
        database.execute("DELETE FROM data_keys WHERE id = '0190a000-0000-7000-8000-000000000003'").await.unwrap(),
        1
    );

    // UNIQUE (purpose, version) survived: the store's ON CONFLICT still names it, and answers false.
    let key = |purpose, version| WrappedDataKey {
        id: uuid::Uuid::now_v7(),
        purpose,
        version,
        provider: "local:0123abcd".into(),
        wrapped: vec![7; 60],
        created_at: time::OffsetDateTime::UNIX_EPOCH,
    };
    assert!(!stores.durable.insert_data_key(&key(KeyPurpose::Data, 1)).await.unwrap(), "data v1 exists");
    assert!(stores.durable.insert_data_key(&key(KeyPurpose::Class(DataClassification::TopSecret), 1)).await.unwrap());
    assert_eq!(stores.durable.data_keys(KeyPurpose::Data).await.unwrap().len(), 1);
    stores.close().await;
}

#[tokio::test]
async fn sqlite_0008_that_fails_changes_nothing_and_leaves_foreign_keys_on() {
    let (database, mut conn) = sqlite_at_0007_with_references().await;
    // A reference that dangles already (foreign keys off, as an old tool might have left it): the
    // rebuild's own check must refuse to commit.
    sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut conn).await.unwrap();
    sqlx::query(
        "INSERT INTO audit_log (seq, id, at, kind, outcome, details, key_id, prev_mac, mac) VALUES \
         (2, '0190a000-0000-7000-8000-000000000021', 0, 'k', 'success', '{}', \
          '0190a000-0000-7000-8000-0000000000ff', zeroblob(32), zeroblob(32))",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let schema_before = database.fetch_texts("SELECT sql FROM sqlite_schema ORDER BY name").await.unwrap();
    let rows_before = sqlite_key_rows(&database).await;

    let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
    let stores = palisade_store::connect(database.url(), None, clock, 1).await.unwrap();
    let failed = stores.migrate().await.expect_err("a dangling reference stops the rebuild");
    assert!(failed.to_string().contains("foreign_key_violations"), "{failed}");

    assert_eq!(database.fetch_texts("SELECT sql FROM sqlite_schema ORDER BY name").await.unwrap(), schema_before);
    assert_eq!(sqlite_key_rows(&database).await, rows_before, "nothing changed");
    let pending = stores.check_schema().await.expect_err("0008 is not applied");
    assert!(pending.to_string().contains("0008 key families"), "{pending}");
    // The connection the migration left mid-transaction with foreign keys off was closed: the
    // store's next one writes (no transaction holds the lock) and enforces foreign keys.
    // (Through a table 0008 leaves alone: the store's audit writes need the columns of 0015.)
    let factor = |user: palisade_core::user::UserId| palisade_core::mfa::FactorRecord {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        kind: palisade_core::mfa::FactorKind::Totp,
        sealed: "sealed".into(),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        confirmed_at: None,
    };
    let orphan = stores.durable.put_pending_factor(&factor(palisade_core::user::UserId::generate())).await;
    let refused = orphan.expect_err("a factor of no user");
    assert!(refused.to_string().contains("FOREIGN KEY"), "{refused}");
    let owner = crate::users::user("fk-owner", None);
    stores.durable.insert_user(&owner).await.unwrap();
    assert!(stores.durable.put_pending_factor(&factor(owner.id)).await.unwrap());

    // Once the reference is repaired, the migration goes through.
    assert_eq!(database.execute("DELETE FROM audit_log WHERE seq = 2").await.unwrap(), 1);
    assert_eq!(stores.migrate().await.unwrap().len(), 10, "0008, then 0009 to 0017");
    stores.check_schema().await.unwrap();
    stores.close().await;
}

/// Why 0008 runs outside sqlx's transaction: inside one, foreign keys cannot be switched off, and
/// deferring them does not carry a referenced table through DROP and RENAME.
#[tokio::test]
async fn sqlite_cannot_rebuild_a_referenced_table_inside_a_transaction() {
    let (database, mut conn) = sqlite_at_0007_with_references().await;
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut *tx).await.unwrap();
    let on: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(on, 1, "inside a transaction, foreign_keys = OFF does nothing");
    sqlx::query("PRAGMA defer_foreign_keys = ON").execute(&mut *tx).await.unwrap();
    for sql in [
        "CREATE TABLE data_keys_new (id TEXT NOT NULL PRIMARY KEY, purpose TEXT NOT NULL, version INTEGER NOT NULL, \
         provider TEXT NOT NULL, wrapped BLOB NOT NULL, created_at INTEGER NOT NULL, UNIQUE (purpose, version)) STRICT",
        "INSERT INTO data_keys_new SELECT * FROM data_keys",
        "DROP TABLE data_keys",
        "ALTER TABLE data_keys_new RENAME TO data_keys",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    let empty: Vec<String> = sqlx::query_scalar("PRAGMA foreign_key_check").fetch_all(&mut *tx).await.unwrap();
    assert!(empty.is_empty(), "every reference finds its key again: {empty:?}");
    let refused = tx.commit().await.expect_err("the drop's deferred violations are still counted");
    assert!(refused.to_string().contains("FOREIGN KEY constraint failed"), "{refused}");
    conn.close().await.unwrap();
    assert!(
        database
            .fetch_text("SELECT sql FROM sqlite_schema WHERE name = 'data_keys'")
            .await
            .unwrap()
            .contains("'audit'")
    );
}
