//! Redis going away and coming back: calls fail fast with `Unavailable` (never `Ok(None)`), and the
//! store reconnects by itself. A TCP relay in front of the real server plays the outage.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use palisade_core::clock::{Clock, ManualClock};
use palisade_core::store::{HotKey, HotStore};
use palisade_store::RedisHotStore;
use time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::schema::closed_port;
use crate::support::{REDIS_URL_VAR, service_url};

/// Forwards 127.0.0.1:`port` to `upstream` until stopped; stopping drops every relayed connection.
struct Relay {
    tasks: JoinSet<()>,
}

impl Relay {
    async fn start(port: u16, upstream: String) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { tasks }
    }

    async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

fn host_port(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(6379))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_fails_fast_as_unavailable() {
    let port = closed_port().await;
    let started = Instant::now();
    let Err(e) = RedisHotStore::connect(&format!("redis://:hunter2@127.0.0.1:{port}")).await else {
        panic!("connected to a closed port");
    };
    assert!(e.is_unavailable(), "{e:?}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(started.elapsed() < StdDuration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn malformed_redis_urls_are_refused_without_the_password() {
    for url in ["http://:hunter2@host", "redis://:hunter2@host:notaport", "redis+cluster://:hunter2@"] {
        let Err(e) = RedisHotStore::connect(url).await else { panic!("{url} was accepted") };
        assert!(!e.is_unavailable(), "{url}: {e:?}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_a_redis_url_uses_redis_for_the_hot_store() {
    let Some(redis_url) = service_url(REDIS_URL_VAR) else { return };
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
    let stores = palisade_store::connect("sqlite::memory:", Some(&redis_url), clock, 1).await.unwrap();
    assert_eq!(stores.hot.backend(), "redis");
    assert_eq!(stores.durable.backend(), "sqlite");
    stores.hot.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_gives_fast_errors_then_the_store_reconnects_by_itself() {
    let Some(redis_url) = service_url(REDIS_URL_VAR) else { return };
    let port = closed_port().await;
    let relay = Relay::start(port, host_port(&redis_url)).await;
    let store = RedisHotStore::connect(&format!("redis://127.0.0.1:{port}")).await.unwrap();
    let key = HotKey::new(&format!("relay:{}", uuid::Uuid::new_v4().simple()), "k");
    store.put(&key, b"before", Duration::minutes(1)).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"before"[..]));

    relay.stop().await;
    for _ in 0..3 {
        let started = Instant::now();
        let outcome = store.get(&key).await;
        assert!(matches!(&outcome, Err(e) if e.is_unavailable()), "while Redis is away: {outcome:?}");
        assert!(started.elapsed() < StdDuration::from_secs(3), "failing took {:?}", started.elapsed());
    }

    let relay = Relay::start(port, host_port(&redis_url)).await;
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let value = loop {
        match store.get(&key).await {
            Ok(value) => break value,
            Err(e) => {
                assert!(e.is_unavailable(), "{e:?}");
                assert!(Instant::now() < deadline, "no reconnection within 10 s: {e}");
                tokio::time::sleep(StdDuration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(value.as_deref(), Some(&b"before"[..]), "the same server, reached again");
    store.delete(&key).await.unwrap();
    relay.stop().await;
}
