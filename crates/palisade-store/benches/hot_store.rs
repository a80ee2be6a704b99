//! Latency of the hot store's common operations, per backend: N sequential calls each of `get`, `put`,
//! `increment` and `compare_and_set`, reported as p50 and p99 in µs per call.
//!
//! `cargo bench -p palisade-store --bench hot_store` measures SQLite (a temporary file) always, and
//! PostgreSQL and Redis when `PALISADE_TEST_DATABASE_URL` / `PALISADE_TEST_REDIS_URL` are set (as for
//! the conformance suite; PostgreSQL in a database created for the run and dropped after), and a Redis
//! Cluster when `PALISADE_TEST_REDIS_CLUSTER_URL` is set.
//! `PALISADE_BENCH_OPS` changes N (default 2,000). One caller at a time: this is latency, not throughput.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use palisade_core::clock::{Clock, SystemClock};
use palisade_core::store::{HotKey, HotStore};
use sqlx::{AssertSqlSafe, Connection};
use time::Duration;

const TTL: Duration = Duration::minutes(10);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let ops: usize = std::env::var("PALISADE_BENCH_OPS").ok().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let mut rows = Vec::new();

    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let stores = sql_stores(&sqlite_url).await;
    rows.extend(measure("sqlite (file, WAL)", stores.hot.as_ref(), ops).await);
    stores.close().await;

    if let Some(admin_url) = env("PALISADE_TEST_DATABASE_URL") {
        let name = format!("palisade_bench_{}", uuid::Uuid::new_v4().simple());
        admin(&admin_url, format!("CREATE DATABASE {name}")).await;
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        let stores = sql_stores(url.as_str()).await;
        rows.extend(measure("postgres", stores.hot.as_ref(), ops).await);
        stores.close().await;
        admin(&admin_url, format!("DROP DATABASE {name} WITH (FORCE)")).await;
    } else {
        eprintln!("PALISADE_TEST_DATABASE_URL is not set: PostgreSQL not measured");
    }

    if let Some(redis_url) = env("PALISADE_TEST_REDIS_URL") {
        let store = palisade_store::RedisHotStore::connect(&redis_url).await.unwrap();
        rows.extend(measure("redis", &store, ops).await);
    } else {
        eprintln!("PALISADE_TEST_REDIS_URL is not set: Redis not measured");
    }

    if let Some(cluster_url) = env("PALISADE_TEST_REDIS_CLUSTER_URL") {
        let store = palisade_store::RedisHotStore::connect(&cluster_url).await.unwrap();
        rows.extend(measure("redis cluster", &store, ops).await);
    }

    println!("\nhot store latency, {ops} sequential calls per operation (µs per call)\n");
    println!("| backend | operation | p50 µs | p99 µs |");
    println!("|---|---|---:|---:|");
    for (backend, operation, p50, p99) in rows {
        println!("| {backend} | {operation} | {p50:.0} | {p99:.0} |");
    }
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

async fn sql_stores(url: &str) -> palisade_store::Stores {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let stores = palisade_store::connect(url, None, clock, 4).await.unwrap();
    stores.migrate().await.unwrap();
    stores
}

async fn admin(url: &str, sql: String) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

type Row = (&'static str, &'static str, f64, f64);

async fn measure(backend: &'static str, store: &dyn HotStore, ops: usize) -> Vec<Row> {
    let tag = format!("bench:{}", uuid::Uuid::new_v4().simple());
    let value_key = HotKey::new(&tag, "value");
    let counter_key = HotKey::new(&tag, "counter");
    let cas_key = HotKey::new(&tag, "cas");
    let value = vec![7u8; 64];
    store.put(&value_key, &value, TTL).await.unwrap();
    store.put(&cas_key, b"0", TTL).await.unwrap();
    let mut cas_current = 0usize;

    let mut rows = Vec::new();
    for operation in ["get", "put", "increment", "compare_and_set"] {
        let warmup = ops / 10;
        let mut samples = Vec::with_capacity(ops);
        for i in 0..warmup + ops {
            let started = Instant::now();
            match operation {
                "get" => assert!(store.get(&value_key).await.unwrap().is_some()),
                "put" => store.put(&value_key, &value, TTL).await.unwrap(),
                "increment" => assert!(store.increment(&counter_key, TTL).await.unwrap().count > 0),
                _ => {
                    let (expected, new) = (cas_current.to_string(), (cas_current + 1).to_string());
                    assert!(
                        store.compare_and_set(&cas_key, Some(expected.as_bytes()), new.as_bytes(), TTL).await.unwrap()
                    );
                    cas_current += 1;
                }
            }
            if i >= warmup {
                samples.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
        samples.sort_by(f64::total_cmp);
        rows.push((backend, operation, percentile(&samples, 0.50), percentile(&samples, 0.99)));
    }
    for key in [&value_key, &counter_key, &cas_key] {
        store.delete(key).await.unwrap();
    }
    rows
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
