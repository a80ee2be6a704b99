//! Migrations and the schema's constraints, on each SQL backend; URL handling.

use std::collections::BTreeSet;
use std::sync::Arc;

use palisade_core::clock::{Clock, ManualClock};
use palisade_core::crypto::{KeyPurpose, WrappedDataKey};
use palisade_core::store::{HotKey, StoreError};
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
            "0007 devices risk"
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
        ("a purpose outside ('data', 'audit')", bad_purpose),
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
    assert_eq!(stores.migrate().await.unwrap().len(), 7);
    stores.check_schema().await.unwrap();
    let key = HotKey::new("memory", "k");
    stores.hot.put(&key, b"v", Duration::seconds(1)).await.unwrap();
    assert_eq!(stores.hot.get(&key).await.unwrap().as_deref(), Some(&b"v"[..]));
    clock.advance(Duration::seconds(1));
    assert_eq!(stores.hot.get(&key).await.unwrap(), None);
    // A second in-memory store is a different database.
    let other = palisade_store::connect("sqlite::memory:", None, clock, 1).await.unwrap();
    assert_eq!(other.migrate().await.unwrap().len(), 7);
}

/// A local port with nothing listening on it.
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
