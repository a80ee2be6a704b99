//! Fail closed and recover: a real Redis that the test starts, stops and starts again.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::spawn_app_with;

struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        Self { port, child }
    }

    async fn wait_ready(&self) {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis on {} did not start", self.port);
    }

    fn stop(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn ready(app: &crate::TestApp) -> (u16, serde_json::Value) {
    let response = app.http.get(app.url("/ready")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_redis_outage_fails_closed_and_the_server_recovers_by_itself() {
    if Command::new("redis-server").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "redis-server is required on CI");
        eprintln!("skipped: redis-server not installed");
        return;
    }
    let port = free_port();
    let redis = Redis::start(port);
    redis.wait_ready().await;
    let url = format!("redis://127.0.0.1:{port}");
    let app = spawn_app_with(&[("PALISADE_REDIS_URL", &url)]).await;

    let (status, body) = ready(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.palisade.hot_store().backend(), "redis");

    redis.stop();
    let (status, body) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["overall"], "UNHEALTHY");
    assert_eq!(body["components"]["cache"], "UNHEALTHY");
    assert_eq!(body["components"]["database"], "HEALTHY", "only the broken component is named");
    let health = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "liveness does not depend on the stores");

    // The store itself reports unavailability, never absence or success.
    let key = palisade_core::store::HotKey::new("fail-closed", "probe");
    let err = app.palisade.hot_store().get(&key).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");

    let redis = Redis::start(port);
    redis.wait_ready().await;
    let mut recovered = false;
    for _ in 0..60 {
        if ready(&app).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "the server reconnects to Redis by itself within 15 s");
    app.palisade.hot_store().put(&key, b"back", time::Duration::seconds(5)).await.unwrap();
    assert_eq!(app.palisade.hot_store().get(&key).await.unwrap().as_deref(), Some(b"back".as_slice()));
    drop(redis);
}
