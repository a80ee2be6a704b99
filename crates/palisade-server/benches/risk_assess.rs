//! What scoring a login costs in process, with GeoIP lookups in MaxMind's own test databases (the
//! ones the end-to-end tests use: City, ASN and Anonymous-IP, all three loaded as in production):
//! - `geoip_lookup`: the three database lookups for one address (one City and ASN know, or one no
//!   database knows);
//! - `engine`: the pure engine over a lookup's answer, against no history (a first login) and
//!   against 50 past logins (the depth the service reads);
//! - `lookup_and_engine`: both, i.e. the CPU a login spends on risk beyond its store reads;
//! - `assess_login_risk`: the embedded face (`Palisade::assess_login_risk`) over a SQLite file:
//!   device signature and fingerprint, the device registry read, GeoIP, the 50-login history read,
//!   the account and address failure counters, and the engine. Each iteration is one
//!   `block_on` on a one-worker runtime (sqlx runs SQLite on its own thread; each query is a hop to
//!   it and back).
//!
//! Run: `cargo bench -p palisade-server --bench risk_assess`

// A benchmark whose setup fails has nobody to report to but the terminal: aborting is the answer.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use divan::Bencher;
use palisade_core::audit::RequestMeta;
use palisade_core::clock::{Clock, SystemClock};
use palisade_core::risk::{
    DeviceFamiliarity, GeoIp, LoginResult, PastLogin, RiskAssessment, RiskContext, RiskHistory, RiskRecord,
    RiskSettings, assess,
};
use palisade_core::session::DeviceInfo;
use palisade_core::user::UserId;
use palisade_server::config::{Config, Sources};
use palisade_server::geoip::{GeoIpPaths, MaxMindGeoIp};
use secrecy::SecretString;

/// Linköping in the City test database, AS29518 in the ASN one.
const KNOWN: &str = "89.160.20.112";
/// An address none of the test databases covers.
const UNKNOWN: &str = "192.0.2.1";
/// History depth the service reads (`risk::service::HISTORY_DEPTH`).
const DEPTH: usize = 50;

fn main() {
    divan::main();
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/geoip").join(name)
}

fn paths() -> GeoIpPaths {
    GeoIpPaths {
        location: Some(data("GeoIP2-City-Test.mmdb")),
        asn: Some(data("GeoLite2-ASN-Test.mmdb")),
        anonymous: Some(data("GeoIP2-Anonymous-IP-Test.mmdb")),
    }
}

fn geoip() -> MaxMindGeoIp {
    let geoip = MaxMindGeoIp::open(paths());
    assert!(geoip.databases().iter().all(|db| db.problem.is_none()), "test databases load");
    geoip
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// 50 logins from Swedish and British places over the past weeks, newest first, at office hours.
fn history(now: time::OffsetDateTime) -> RiskHistory {
    let logins = (0..DEPTH)
        .map(|i| {
            let swedish = i % 3 == 0;
            PastLogin {
                at: now - time::Duration::hours(30 * (i as i64 + 1)),
                country: Some(if swedish { "SE" } else { "GB" }.into()),
                asn: Some(if swedish { 29518 } else { 1221 }),
                location: Some(if swedish { (58.4167, 15.6167) } else { (51.5142, -0.0931) }),
                accuracy_km: Some(if swedish { 76 } else { 10 }),
            }
        })
        .collect();
    RiskHistory { logins }
}

fn context(geoip: &MaxMindGeoIp, address: &str) -> RiskContext {
    RiskContext {
        at: SystemClock.now(),
        ip: Some(ip(address)),
        geo: geoip.lookup(ip(address)),
        geo_capabilities: geoip.capabilities(),
        device: DeviceFamiliarity::Known,
        account_failures: 1,
        address_failures: 2,
    }
}

/// The three lookups for one address.
mod geoip_lookup {
    use super::*;

    #[divan::bench]
    fn known_address(bencher: Bencher) {
        let geoip = geoip();
        let address = ip(KNOWN);
        assert_eq!(geoip.lookup(address).country.as_deref(), Some("SE"));
        bencher.bench_local(|| geoip.lookup(divan::black_box(address)));
    }

    #[divan::bench]
    fn unknown_address(bencher: Bencher) {
        let geoip = geoip();
        let address = ip(UNKNOWN);
        assert_eq!(geoip.lookup(address).country, None);
        bencher.bench_local(|| geoip.lookup(divan::black_box(address)));
    }
}

/// The pure engine.
mod engine {
    use super::*;

    #[divan::bench]
    fn first_login(bencher: Bencher) {
        let settings = RiskSettings::default();
        let context = context(&geoip(), KNOWN);
        let history = RiskHistory { logins: Vec::new() };
        bencher.bench_local(|| assess(&settings, divan::black_box(&context), divan::black_box(&history)));
    }

    #[divan::bench]
    fn fifty_past_logins(bencher: Bencher) {
        let settings = RiskSettings::default();
        let context = context(&geoip(), KNOWN);
        let history = history(context.at);
        let assessment: RiskAssessment = assess(&settings, &context, &history);
        assert!(assessment.score > 0.0, "the failures fire: {assessment:?}");
        bencher.bench_local(|| assess(&settings, divan::black_box(&context), divan::black_box(&history)));
    }
}

/// GeoIP and the engine, 50 past logins: a login's risk CPU beyond its store reads.
#[divan::bench]
fn lookup_and_engine(bencher: Bencher) {
    let settings = RiskSettings::default();
    let geoip = geoip();
    let base = context(&geoip, KNOWN);
    let history = history(base.at);
    let address = ip(KNOWN);
    bencher.bench_local(|| {
        let context = RiskContext { geo: geoip.lookup(divan::black_box(address)), ..base.clone() };
        assess(&settings, &context, &history)
    });
}

/// `Palisade::assess_login_risk` over a SQLite file, a registered user with 50 past logins and a
/// known device.
#[divan::bench]
fn assess_login_risk(bencher: Bencher) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let env: HashMap<String, String> = HashMap::from([
        ("PALISADE_DATA_DIR".into(), dir.path().display().to_string()),
        ("PALISADE_DATABASE_URL".into(), format!("sqlite://{}/palisade.db", dir.path().display())),
        ("PALISADE_MASTER_KEY".into(), "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=".into()),
        ("PALISADE_GEOIP_DB".into(), data("GeoIP2-City-Test.mmdb").display().to_string()),
        ("PALISADE_GEOIP_ASN_DB".into(), data("GeoLite2-ASN-Test.mmdb").display().to_string()),
        ("PALISADE_GEOIP_ANONYMOUS_DB".into(), data("GeoIP2-Anonymous-IP-Test.mmdb").display().to_string()),
    ]);
    let config: Config = Config::load_from(Sources { env, ..Sources::default() }).expect("config");
    let meta = RequestMeta {
        ip: Some(KNOWN.into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into()),
        request_id: None,
        accept_language: Some("en-GB,en;q=0.8".into()),
    };
    let device = DeviceInfo { name: Some("laptop".into()), ..DeviceInfo::default() };
    let (palisade, user) = runtime.block_on(async {
        let palisade = palisade_server::bootstrap(&config, Arc::new(SystemClock)).await.expect("bootstrap");
        let user: UserId = palisade
            .auth()
            .register(
                palisade_core::auth::RegisterInput {
                    username: "bench-user".into(),
                    password: SecretString::from("correct horse battery staple 1"),
                    email: None,
                },
                "bench",
                &meta,
            )
            .await
            .expect("register");
        let now = palisade.clock().now();
        let assessment = palisade.assess_login_risk(user, Some(&device), &meta).await.expect("assess");
        for (i, past) in history(now).logins.into_iter().enumerate() {
            let record = RiskRecord {
                id: uuid::Uuid::now_v7(),
                user_id: user,
                at: past.at,
                ip: Some(KNOWN.into()),
                country: past.country,
                city: None,
                location: past.location,
                accuracy_km: past.accuracy_km,
                asn: past.asn,
                device_id: None,
                assessment: assessment.clone(),
                result: if i % 10 == 9 { LoginResult::Blocked } else { LoginResult::Succeeded },
            };
            palisade.durable_store().insert_risk_record(&record).await.expect("history");
        }
        (palisade, user)
    });
    let assessment = runtime.block_on(palisade.assess_login_risk(user, Some(&device), &meta)).expect("assess");
    assert!(
        assessment.absent.iter().all(|a| !a.reason.starts_with("no GeoIP") && !a.reason.starts_with("first login")),
        "every GeoIP database loaded and the history read: {assessment:?}"
    );
    bencher.bench_local(|| runtime.block_on(palisade.assess_login_risk(user, Some(&device), &meta)));
}
