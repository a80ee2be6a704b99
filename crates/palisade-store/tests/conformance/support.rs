//! Harnesses: one fresh, isolated backend per test.
//!
//! - SQLite: a database file in its own temporary directory (in a nested directory the store must
//!   create), time from a `ManualClock`.
//! - PostgreSQL: a database created for the test on `PALISADE_TEST_DATABASE_URL`'s server and dropped
//!   (WITH (FORCE)) when the harness is dropped, even after a failed assertion; time from a `ManualClock`.
//! - Redis: the server at `PALISADE_TEST_REDIS_URL`, isolated by a unique key tag per test; time is
//!   Redis's own, so expiry tests really wait.
//!
//! - Redis Cluster: like Redis, at `PALISADE_TEST_REDIS_CLUSTER_URL`; an optional deployment, so a
//!   missing variable skips it even in CI.
//!
//! A missing variable skips the suite with a message, unless `CI=true`, where it fails.

use std::path::PathBuf;
use std::sync::Arc;

use palisade_core::clock::{Clock, ManualClock};
use palisade_core::store::{DurableStore, HotKey, HotStore};
use palisade_store::Stores;
use sqlx::{AssertSqlSafe, Connection};
use time::Duration;

pub const DATABASE_URL_VAR: &str = "PALISADE_TEST_DATABASE_URL";
pub const REDIS_URL_VAR: &str = "PALISADE_TEST_REDIS_URL";
/// Optional, even in CI: a Redis Cluster, e.g. `redis+cluster://127.0.0.1:7101,127.0.0.1:7102`.
pub const REDIS_CLUSTER_URL_VAR: &str = "PALISADE_TEST_REDIS_CLUSTER_URL";

/// The variable's value; `None` (with a message) when unset, or a panic when running in CI.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "{var} is not set: CI runs every backend of the conformance suite");
            eprintln!("skipping: {var} is not set");
            None
        }
    }
}

/// A database that exists for one test.
pub enum TestDatabase {
    Sqlite { _dir: tempfile::TempDir, url: String, path: PathBuf },
    Postgres(PostgresDatabase),
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("nested").join("dir").join("palisade.db");
        let url = format!("sqlite://{}", path.display());
        Self::Sqlite { _dir: dir, url, path }
    }

    pub async fn postgres() -> Option<Self> {
        let admin_url = service_url(DATABASE_URL_VAR)?;
        Some(Self::Postgres(PostgresDatabase::create(&admin_url).await))
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } => url,
            Self::Postgres(db) => &db.url,
        }
    }

    pub fn sqlite_path(&self) -> Option<&PathBuf> {
        match self {
            Self::Sqlite { path, .. } => Some(path),
            Self::Postgres(_) => None,
        }
    }

    /// Runs `sql` directly, around the store (to tamper, or to probe constraints).
    pub async fn execute(&self, sql: &'static str) -> Result<u64, sqlx::Error> {
        match self {
            Self::Sqlite { url, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await?;
                let done = sqlx::query(sql).execute(&mut conn).await?;
                conn.close().await?;
                Ok(done.rows_affected())
            }
            Self::Postgres(db) => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await?;
                let done = sqlx::query(sql).execute(&mut conn).await?;
                conn.close().await?;
                Ok(done.rows_affected())
            }
        }
    }

    /// Runs `sql` directly and returns the first column of every row as text.
    pub async fn fetch_texts(&self, sql: &'static str) -> Result<Vec<String>, sqlx::Error> {
        match self {
            Self::Sqlite { url, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await?;
                sqlx::query_scalar(sql).fetch_all(&mut conn).await
            }
            Self::Postgres(db) => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await?;
                sqlx::query_scalar(sql).fetch_all(&mut conn).await
            }
        }
    }

    /// Runs `sql` directly and returns the first column of the first row as text.
    pub async fn fetch_text(&self, sql: &'static str) -> Result<String, sqlx::Error> {
        match self {
            Self::Sqlite { url, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await?;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await
            }
            Self::Postgres(db) => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await?;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await
            }
        }
    }
}

/// A PostgreSQL database created for one test, dropped with the value.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PostgresDatabase {
    async fn create(admin_url: &str) -> Self {
        let name = format!("palisade_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("connect to PALISADE_TEST_DATABASE_URL");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        admin.close().await.expect("close");
        let mut url = url::Url::parse(admin_url).expect("PALISADE_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Self { admin_url: admin_url.to_owned(), name, url: url.to_string() }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await: do it on a thread of its own, with its own runtime, and wait for it.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// A hot store under test, with a way to let time pass.
pub struct HotHarness {
    pub store: Arc<dyn HotStore>,
    /// `None` for Redis, which keeps its own time.
    clock: Option<Arc<ManualClock>>,
    tag: String,
    _stores: Option<Stores>,
    _database: Option<TestDatabase>,
}

impl HotHarness {
    pub async fn sqlite() -> Option<Self> {
        Some(Self::on_sql(TestDatabase::sqlite()).await)
    }

    pub async fn postgres() -> Option<Self> {
        Some(Self::on_sql(TestDatabase::postgres().await?).await)
    }

    pub async fn redis() -> Option<Self> {
        let url = service_url(REDIS_URL_VAR)?;
        let store = palisade_store::RedisHotStore::connect(&url).await.expect("connect to PALISADE_TEST_REDIS_URL");
        Some(Self { store: Arc::new(store), clock: None, tag: unique_tag(), _stores: None, _database: None })
    }

    pub async fn redis_cluster() -> Option<Self> {
        let Some(url) = std::env::var(REDIS_CLUSTER_URL_VAR).ok().filter(|u| !u.trim().is_empty()) else {
            eprintln!("skipping: {REDIS_CLUSTER_URL_VAR} is not set");
            return None;
        };
        let store = palisade_store::RedisHotStore::connect(&url).await.expect("connect to the Redis Cluster");
        Some(Self { store: Arc::new(store), clock: None, tag: unique_tag(), _stores: None, _database: None })
    }

    async fn on_sql(database: TestDatabase) -> Self {
        let clock = Arc::new(ManualClock::fixed());
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let stores = palisade_store::connect(database.url(), None, dyn_clock, 8).await.expect("connect");
        stores.migrate().await.expect("migrate");
        Self {
            store: stores.hot.clone(),
            clock: Some(clock),
            tag: unique_tag(),
            _stores: Some(stores),
            _database: Some(database),
        }
    }

    /// A key unique to this test.
    pub fn key(&self, suffix: &str) -> HotKey {
        HotKey::new(&self.tag, suffix)
    }

    /// A time to live short enough to wait out for real on Redis.
    pub fn short_ttl(&self) -> Duration {
        match self.clock {
            Some(_) => Duration::seconds(30),
            None => Duration::milliseconds(80),
        }
    }

    /// Whether time is simulated (so boundaries can be checked to the millisecond).
    pub fn has_manual_clock(&self) -> bool {
        self.clock.is_some()
    }

    /// Lets `by` pass: moves the manual clock, or sleeps (with a margin) against Redis.
    pub async fn pass(&self, by: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(by),
            None => {
                tokio::time::sleep(std::time::Duration::try_from(by + Duration::milliseconds(40)).expect("positive"))
                    .await
            }
        }
    }
}

/// A durable store under test, with direct access to its database.
pub struct DurableHarness {
    pub store: Arc<dyn DurableStore>,
    pub clock: Arc<ManualClock>,
    pub stores: Stores,
    pub database: TestDatabase,
}

impl DurableHarness {
    pub async fn sqlite() -> Option<Self> {
        Some(Self::on(TestDatabase::sqlite()).await)
    }

    pub async fn postgres() -> Option<Self> {
        Some(Self::on(TestDatabase::postgres().await?).await)
    }

    async fn on(database: TestDatabase) -> Self {
        let clock = Arc::new(ManualClock::fixed());
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let stores = palisade_store::connect(database.url(), None, dyn_clock, 8).await.expect("connect");
        stores.migrate().await.expect("migrate");
        Self { store: stores.durable.clone(), clock, stores, database }
    }
}

fn unique_tag() -> String {
    format!("conformance:{}", uuid::Uuid::new_v4().simple())
}

/// Generates `mod $backend { #[tokio::test] async fn $test() }` for one backend, each test building
/// its harness with `super::$harness::$backend()` (skipping when that returns `None`) and calling the
/// generic `super::$test(&harness)`.
macro_rules! backend_tests {
    ($harness:ident, $backend:ident, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    if let Some(harness) = super::$harness::$backend().await {
                        super::$test(&harness).await;
                    }
                }
            )*
        }
    };
}

/// Runs every listed test against every listed backend.
macro_rules! conformance {
    ($harness:ident, [$($backend:ident),* $(,)?], $tests:tt) => {
        $( crate::support::backend_tests!($harness, $backend, $tests); )*
    };
}

pub(crate) use {backend_tests, conformance};
