//! Refresh-token rotation (`rotate_refresh_token`, the durable store's hottest write) per SQL backend:
//! - latency: N sequential rotations along one chain, p50 and p99 in µs per call;
//! - throughput: 16 concurrent tasks, each rotating a chain of its own (its own login), for a few
//!   seconds; rotations per second over all of them.
//!
//! `cargo bench -p palisade-store --bench refresh_rotation` measures SQLite (a temporary file, WAL)
//! always, and PostgreSQL when `PALISADE_TEST_DATABASE_URL` is set (in a database created for the run
//! and dropped after). The pool has the server's default size (`database_max_connections`, 10).
//! `PALISADE_BENCH_OPS` changes N (default 2,000), `PALISADE_BENCH_SECONDS` the throughput run
//! (default 3), `PALISADE_BENCH_TASKS` the concurrent tasks (default 16).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use palisade_core::clock::{Clock, SystemClock};
use palisade_core::store::DurableStore;
use palisade_core::token::{RefreshTokenRecord, Rotation, SessionId, TokenHash};
use palisade_core::user::{User, UserId, UserInsert, Username};
use sqlx::{AssertSqlSafe, Connection};
use time::Duration;

const TTL: Duration = Duration::days(30);
const POOL: u32 = 10;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let ops: usize = env_number("PALISADE_BENCH_OPS").unwrap_or(2000);
    let seconds: u64 = env_number("PALISADE_BENCH_SECONDS").unwrap_or(3);
    let tasks: usize = env_number("PALISADE_BENCH_TASKS").unwrap_or(16);
    let mut rows = Vec::new();

    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let stores = sql_stores(&sqlite_url).await;
    rows.push(measure("sqlite (file, WAL, synchronous=NORMAL)", &stores.durable, ops, tasks, seconds).await);
    stores.close().await;

    if let Some(admin_url) = env("PALISADE_TEST_DATABASE_URL") {
        let name = format!("palisade_bench_{}", uuid::Uuid::new_v4().simple());
        admin(&admin_url, format!("CREATE DATABASE {name}")).await;
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        let stores = sql_stores(url.as_str()).await;
        rows.push(measure("postgres", &stores.durable, ops, tasks, seconds).await);
        stores.close().await;
        admin(&admin_url, format!("DROP DATABASE {name} WITH (FORCE)")).await;
    } else {
        eprintln!("PALISADE_TEST_DATABASE_URL is not set: PostgreSQL not measured");
    }

    println!(
        "\nrefresh-token rotation: {ops} sequential calls; then {tasks} tasks × {seconds} s, each on its own chain"
    );
    println!("(pool of {POOL} connections)\n");
    println!("| backend | p50 µs | p99 µs | rotations/s ({tasks} tasks) |");
    println!("|---|---:|---:|---:|");
    for (backend, p50, p99, per_second) in rows {
        println!("| {backend} | {p50:.0} | {p99:.0} | {per_second:.0} |");
    }
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn env_number<T: std::str::FromStr>(var: &str) -> Option<T> {
    env(var).and_then(|v| v.parse().ok())
}

async fn sql_stores(url: &str) -> palisade_store::Stores {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let stores = palisade_store::connect(url, None, clock, POOL).await.unwrap();
    stores.migrate().await.unwrap();
    stores
}

async fn admin(url: &str, sql: String) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

fn token_hash() -> TokenHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    TokenHash(bytes)
}

/// A new login of `user`: the first token of a family.
async fn login(store: &dyn DurableStore, user: UserId) -> TokenHash {
    let now = SystemClock.now();
    let record = RefreshTokenRecord {
        hash: token_hash(),
        family_id: uuid::Uuid::now_v7(),
        parent: None,
        user_id: user,
        session_id: SessionId::generate(),
        issued_at: now,
        expires_at: now + TTL,
    };
    store.insert_refresh_family(&record).await.unwrap();
    record.hash
}

/// Rotates `current` and returns the child.
async fn rotate(store: &dyn DurableStore, current: &TokenHash) -> TokenHash {
    let (next, now) = (token_hash(), SystemClock.now());
    let answer = store.rotate_refresh_token(current, &next, now + TTL, now, Duration::ZERO).await.unwrap();
    assert!(matches!(answer, Rotation::Rotated { .. }), "{answer:?}");
    next
}

type Row = (&'static str, f64, f64, f64);

async fn measure(backend: &'static str, store: &Arc<dyn DurableStore>, ops: usize, tasks: usize, seconds: u64) -> Row {
    let now = SystemClock.now();
    let user = User {
        id: UserId::generate(),
        username: Username::parse("bench").unwrap(),
        email: None,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        password_changed_at: now,
        created_at: now,
        locked: false,
        admin: false,
    };
    assert_eq!(store.insert_user(&user).await.unwrap(), UserInsert::Inserted);

    let mut current = login(store.as_ref(), user.id).await;
    let warmup = ops / 10;
    let mut samples = Vec::with_capacity(ops);
    for i in 0..warmup + ops {
        let started = Instant::now();
        current = rotate(store.as_ref(), &current).await;
        if i >= warmup {
            samples.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    samples.sort_by(f64::total_cmp);

    let run = std::time::Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut current = login(store.as_ref(), user.id).await;
                let mut done = 0u64;
                while started.elapsed() < run {
                    current = rotate(store.as_ref(), &current).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    let per_second = total as f64 / started.elapsed().as_secs_f64();
    (backend, percentile(&samples, 0.50), percentile(&samples, 0.99), per_second)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
