//! A real SMTP server for the e-mail tests: `src/notify/smtp_sink.py` (Python's aiosmtpd) on a
//! free loopback port, which writes every message it accepts to a JSON-lines file before it answers
//! 250. Used by the MFA e-mail, the alert and the approval tests (`approval.rs` puts a relay in front).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/notify/smtp_sink.py");

/// `smtp_sink.py` running on a free port; killed (and reaped) on drop.
pub struct SmtpSink {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// Whether aiosmtpd can be used here. Without it the e-mail tests cannot run: under `CI=true`
    /// that is a failure, elsewhere they say why (`what` needs it) and pass.
    fn available(what: &str) -> bool {
        let probe = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if probe.is_ok_and(|status| status.success()) {
            return true;
        }
        let why = format!("python3 with aiosmtpd is needed for {what} (python3 -m pip install aiosmtpd)");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipping: {why}");
        false
    }

    /// Starts one, or `None` when aiosmtpd is missing (outside CI) for the tests of `what`.
    pub fn start(what: &str) -> Option<Self> {
        if !Self::available(what) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("received.jsonl");
        let mut child = Command::new("python3")
            .arg(SINK)
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // The sink prints its port once it listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("smtp_sink.py printed {line:?}, not its port"));
        Some(Self { child, port, out, _dir: dir })
    }

    /// The messages received so far. The sink writes a message before it answers 250, so one the
    /// server saw accepted is already here.
    pub fn received(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    /// Waits up to `patience` for a message to `to` whose subject `matches`.
    pub async fn wait_for(&self, to: &str, matches: impl Fn(&str) -> bool, patience: std::time::Duration) -> Value {
        let started = std::time::Instant::now();
        loop {
            let found = self
                .received()
                .into_iter()
                .find(|m| m["rcpt_tos"] == json!([to]) && m["subject"].as_str().is_some_and(&matches));
            if let Some(found) = found {
                return found;
            }
            assert!(started.elapsed() < patience, "no matching message to {to}: {:?}", self.received());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
