//! [`MaxMindGeoIp`]: the GeoIP port of `palisade_core::risk` over MaxMind DB files, read into
//! memory and re-read when they change on disk.
//!
//! Up to three files, each named by its own setting:
//! - `geoip_db`: a City database (country, city, coordinates, accuracy radius) or a Country database
//!   (country only); the file's `database_type` says which (GeoIP2/GeoLite2 City, Country or
//!   Enterprise, and the DB-IP Lite files of the same layout).
//! - `geoip_asn_db`: an ASN (or ISP) database: the autonomous system and its organisation.
//! - `geoip_anonymous_db`: an Anonymous-IP database: Tor exits, public proxies, VPNs, hosting.
//!
//! # Failure
//! A file that is missing, unreadable, corrupt or of the wrong kind never stops the server: the
//! adapter is built anyway and [`GeoIp::status`] is `Degraded`, naming the setting, the path and
//! the problem (for `/ready`). A file that goes bad after it was loaded keeps the copy loaded
//! before. A lookup never fails: an address a database does not cover, a record that does not
//! decode, an IPv6 address in an IPv4-only database, all give empty fields.
//!
//! # Reloading
//! [`MaxMindGeoIp::reload_if_changed`] compares each file's size and modification time with the
//! ones it loaded and re-reads the files that changed; [`spawn_reload`] calls it periodically on the
//! blocking pool (a City database is tens of megabytes). Replace a database by writing the new file
//! next to it and renaming it over the old one: a file caught half-written is refused, and read
//! again once its size or time changes.
//!
//! This module must never panic on input, never hold a lock across `.await` or while reading a
//! file, and never log per lookup above `debug`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use maxminddb::{Reader, geoip2};
use palisade_core::risk::{Anonymizer, GeoCapabilities, GeoInfo, GeoIp, GeoStatus};

use crate::config::Config;

/// How often the server looks for changed database files.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// Which of the three files a setting names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseRole {
    /// `geoip_db`: a City or Country database.
    Location,
    /// `geoip_asn_db`: an ASN (or ISP) database.
    Asn,
    /// `geoip_anonymous_db`: an Anonymous-IP database.
    Anonymous,
}

impl DatabaseRole {
    /// The setting that names the file (`geoip_db`, `geoip_asn_db`, `geoip_anonymous_db`).
    pub fn setting(self) -> &'static str {
        match self {
            Self::Location => "geoip_db",
            Self::Asn => "geoip_asn_db",
            Self::Anonymous => "geoip_anonymous_db",
        }
    }

    /// What the setting expects, for the message about a file of another kind.
    fn expected(self) -> &'static str {
        match self {
            Self::Location => "a City or Country database (GeoIP2-City, GeoLite2-City, GeoIP2-Country, …)",
            Self::Asn => "an ASN database (GeoLite2-ASN, or GeoIP2-ISP)",
            Self::Anonymous => "an Anonymous-IP database (GeoIP2-Anonymous-IP)",
        }
    }

    /// What a file whose metadata says `database_type` holds, if it is one this role can read.
    fn kind_of(self, database_type: &str) -> Option<Kind> {
        let has = |word: &str| database_type.to_ascii_lowercase().contains(word);
        match self {
            Self::Location if has("city") || has("enterprise") => Some(Kind::City),
            Self::Location if has("country") => Some(Kind::Country),
            Self::Asn if has("asn") || has("isp") => Some(Kind::Asn),
            Self::Anonymous if has("anonymous") => Some(Kind::Anonymous),
            _ => None,
        }
    }
}

/// The record layout of a loaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    City,
    Country,
    Asn,
    Anonymous,
}

/// The paths of the databases to load; `None` for a database not used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoIpPaths {
    /// `geoip_db`.
    pub location: Option<PathBuf>,
    /// `geoip_asn_db`.
    pub asn: Option<PathBuf>,
    /// `geoip_anonymous_db`.
    pub anonymous: Option<PathBuf>,
}

impl GeoIpPaths {
    /// The paths the configuration names.
    pub fn from_config(config: &Config) -> Self {
        Self {
            location: config.geoip_db.clone(),
            asn: config.geoip_asn_db.clone(),
            anonymous: config.geoip_anonymous_db.clone(),
        }
    }

    /// Whether any database is named.
    pub fn any(&self) -> bool {
        self.location.is_some() || self.asn.is_some() || self.anonymous.is_some()
    }
}

/// One database as loaded.
struct Loaded {
    reader: Reader<Vec<u8>>,
    kind: Kind,
}

/// A file's size and modification time: what tells a changed file from the one loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

/// Why a file could not be used, and whether reading it again unchanged could help.
struct LoadError {
    problem: String,
    /// An I/O error (permissions, a vanished file) may pass without the file changing; a file that
    /// is not a database of the right kind will not, so it is not parsed again until it changes.
    transient: bool,
}

#[derive(Default)]
struct SlotState {
    current: Option<Arc<Loaded>>,
    /// The stamp of the file last loaded, or last refused for its content.
    seen: Option<FileStamp>,
    /// Why the file in use is not the one on disk (or why there is none), for `status()`.
    problem: Option<String>,
}

/// One configured file.
struct Slot {
    role: DatabaseRole,
    path: PathBuf,
    /// Held only to clone or swap the `Arc` and to read or write the problem: never across
    /// `.await` and never while a file is read, so lookups and `/ready` never wait for a reload.
    state: RwLock<SlotState>,
}

impl Slot {
    fn new(role: DatabaseRole, path: PathBuf) -> Self {
        Self { role, path, state: RwLock::new(SlotState::default()) }
    }

    fn current(&self) -> Option<Arc<Loaded>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).current.clone()
    }

    fn problem(&self) -> Option<String> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).problem.clone()
    }

    /// Loads the file if it changed since it was last loaded or refused (always, with `force`).
    fn refresh(&self, force: bool) -> Refresh {
        let stamp = match std::fs::metadata(&self.path) {
            Ok(meta) if meta.is_file() => FileStamp { len: meta.len(), modified: meta.modified().ok() },
            Ok(_) => return self.refuse(None, "is not a regular file".to_owned()),
            Err(e) => return self.refuse(None, format!("cannot be read: {e}")),
        };
        let seen = self.state.read().unwrap_or_else(PoisonError::into_inner).seen;
        if !force && seen == Some(stamp) {
            return Refresh::Unchanged;
        }
        match open(self.role, &self.path) {
            Ok(loaded) => {
                let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
                state.current = Some(Arc::new(loaded));
                state.seen = Some(stamp);
                state.problem = None;
                Refresh::Loaded
            }
            Err(LoadError { problem, transient }) => self.refuse((!transient).then_some(stamp), problem),
        }
    }

    /// Records why the file on disk is not used; `seen`: remember the file so it is not parsed
    /// again until it changes.
    fn refuse(&self, seen: Option<FileStamp>, problem: String) -> Refresh {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let kept = if state.current.is_some() { "; the copy loaded before is still in use" } else { "" };
        let message = format!("{} {}: {problem}{kept}", self.role.setting(), self.path.display());
        if seen.is_some() {
            state.seen = seen;
        }
        let new = state.problem.as_deref() != Some(message.as_str());
        state.problem = Some(message.clone());
        Refresh::Refused { message, new }
    }

    fn info(&self) -> DatabaseInfo {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let metadata = state.current.as_ref().map(|loaded| loaded.reader.metadata());
        DatabaseInfo {
            setting: self.role.setting(),
            path: self.path.clone(),
            database_type: metadata.map(|m| m.database_type.clone()),
            build_epoch: metadata.map(|m| m.build_epoch),
            problem: state.problem.clone(),
        }
    }
}

enum Refresh {
    Unchanged,
    Loaded,
    /// `new`: a problem not reported before (so it is logged once, not every interval).
    Refused {
        message: String,
        new: bool,
    },
}

/// Reads and checks one file.
fn open(role: DatabaseRole, path: &Path) -> Result<Loaded, LoadError> {
    let reader = Reader::open_readfile(path).map_err(|e| match e {
        maxminddb::MaxMindDbError::Io(e) => LoadError { problem: format!("cannot be read: {e}"), transient: true },
        other => LoadError { problem: format!("is not a valid MaxMind DB file ({other})"), transient: false },
    })?;
    let database_type = reader.metadata().database_type.clone();
    let Some(kind) = role.kind_of(&database_type) else {
        return Err(LoadError {
            problem: format!("is a {database_type:?} database, but {} needs {}", role.setting(), role.expected()),
            transient: false,
        });
    };
    Ok(Loaded { reader, kind })
}

/// What one configured database is, for start-up logs and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// The setting that names it.
    pub setting: &'static str,
    /// Its path.
    pub path: PathBuf,
    /// The `database_type` of the copy in use (`GeoIP2-City`, …); `None` when none is loaded.
    pub database_type: Option<String>,
    /// When MaxMind built the copy in use (Unix seconds).
    pub build_epoch: Option<u64>,
    /// Why the file on disk is not in use, if it is not.
    pub problem: Option<String>,
}

/// The [`GeoIp`] port over MaxMind DB files. Build it with [`MaxMindGeoIp::open`]; share it as an
/// `Arc` between the services and [`spawn_reload`].
pub struct MaxMindGeoIp {
    slots: Vec<Slot>,
    /// Serialises reloads (two at once would only read the same files twice). Held while files
    /// are read, so only on the blocking pool; lookups never take it.
    reloading: Mutex<()>,
}

impl std::fmt::Debug for MaxMindGeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.databases()).finish()
    }
}

impl MaxMindGeoIp {
    /// Loads the named files. Never fails: a file that cannot be used leaves its part of every
    /// answer empty and makes [`GeoIp::status`] `Degraded`, naming it. Reads the files: call it
    /// where blocking is fine (start-up) or on the blocking pool.
    pub fn open(paths: GeoIpPaths) -> Self {
        let GeoIpPaths { location, asn, anonymous } = paths;
        let slots: Vec<Slot> =
            [(DatabaseRole::Location, location), (DatabaseRole::Asn, asn), (DatabaseRole::Anonymous, anonymous)]
                .into_iter()
                .filter_map(|(role, path)| path.map(|path| Slot::new(role, path)))
                .collect();
        for slot in &slots {
            slot.refresh(true);
        }
        Self { slots, reloading: Mutex::new(()) }
    }

    /// The databases the configuration names, or `None` when it names none (geo signals are off;
    /// the core then uses `NoGeoIp`).
    pub fn from_config(config: &Config) -> Option<Self> {
        let paths = GeoIpPaths::from_config(config);
        paths.any().then(|| Self::open(paths))
    }

    /// Re-reads every file whose size or modification time changed since it was loaded (or
    /// refused), and retries files that could not be read. A file that fails keeps the copy
    /// loaded before, and `status()` says so. Returns how many databases were replaced. Blocking:
    /// run it on the blocking pool.
    pub fn reload_if_changed(&self) -> usize {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(PoisonError::into_inner);
        let mut reloaded = 0;
        for slot in &self.slots {
            match slot.refresh(false) {
                Refresh::Unchanged => {}
                Refresh::Loaded => {
                    reloaded += 1;
                    let info = slot.info();
                    tracing::info!(
                        setting = info.setting,
                        path = %info.path.display(),
                        database_type = info.database_type.as_deref().unwrap_or_default(),
                        build_epoch = info.build_epoch.unwrap_or_default(),
                        "GeoIP database reloaded"
                    );
                }
                Refresh::Refused { message, new: true } => tracing::warn!("GeoIP database not reloaded: {message}"),
                Refresh::Refused { new: false, .. } => {}
            }
        }
        reloaded
    }

    /// Each configured database: what is loaded and what is wrong.
    pub fn databases(&self) -> Vec<DatabaseInfo> {
        self.slots.iter().map(Slot::info).collect()
    }

    fn loaded(&self, role: DatabaseRole) -> Option<Arc<Loaded>> {
        self.slots.iter().find(|slot| slot.role == role).and_then(Slot::current)
    }
}

impl GeoIp for MaxMindGeoIp {
    fn lookup(&self, ip: IpAddr) -> GeoInfo {
        // `::ffff:a.b.c.d` (a dual-stack listener's IPv4 peer) is looked up as a.b.c.d, which
        // also works in IPv4-only databases.
        let ip = ip.to_canonical();
        let mut info = GeoInfo::default();
        if let Some(db) = self.loaded(DatabaseRole::Location) {
            match db.kind {
                Kind::City => {
                    if let Some(city) = decode::<geoip2::City<'_>>(&db, ip) {
                        info.country = country_code(city.country.iso_code);
                        info.city = city.city.names.english.map(str::to_owned);
                        info.location = coordinates(city.location.latitude, city.location.longitude);
                        info.accuracy_km = info.location.and(city.location.accuracy_radius).map(u32::from);
                    }
                }
                Kind::Country | Kind::Asn | Kind::Anonymous => {
                    if let Some(country) = decode::<geoip2::Country<'_>>(&db, ip) {
                        info.country = country_code(country.country.iso_code);
                    }
                }
            }
        }
        if let Some(db) = self.loaded(DatabaseRole::Asn)
            && let Some(asn) = decode::<geoip2::Asn<'_>>(&db, ip)
        {
            info.asn = asn.autonomous_system_number;
            info.network_org = asn.autonomous_system_organization.map(str::to_owned);
        }
        if let Some(db) = self.loaded(DatabaseRole::Anonymous) {
            // With the database loaded an address it does not list is a known answer: no flag.
            let flags = decode::<geoip2::AnonymousIp>(&db, ip);
            let set = |flag: fn(&geoip2::AnonymousIp) -> Option<bool>| flags.as_ref().and_then(flag) == Some(true);
            info.anonymizer = Some(Anonymizer {
                tor_exit: set(|f| f.is_tor_exit_node),
                public_proxy: set(|f| f.is_public_proxy),
                anonymous_vpn: set(|f| f.is_anonymous_vpn),
                hosting_provider: set(|f| f.is_hosting_provider),
            });
        }
        info
    }

    fn capabilities(&self) -> GeoCapabilities {
        let location = self.loaded(DatabaseRole::Location).map(|db| db.kind);
        GeoCapabilities {
            country: location.is_some(),
            location: location == Some(Kind::City),
            asn: self.loaded(DatabaseRole::Asn).is_some(),
            anonymizer: self.loaded(DatabaseRole::Anonymous).is_some(),
        }
    }

    fn status(&self) -> GeoStatus {
        if self.slots.is_empty() {
            return GeoStatus::Off;
        }
        let problems: Vec<String> = self.slots.iter().filter_map(Slot::problem).collect();
        if problems.is_empty() { GeoStatus::Healthy } else { GeoStatus::Degraded(problems.join("; ")) }
    }
}

/// The record for `ip`, or `None`: not covered, or a record that does not decode (logged at
/// debug: a damaged file must not flood the log, and `status()` is about files, not records).
fn decode<'a, T: serde::Deserialize<'a>>(db: &'a Loaded, ip: IpAddr) -> Option<T> {
    let found = db.reader.lookup(ip).and_then(|result| result.decode::<T>());
    match found {
        Ok(record) => record,
        Err(e) => {
            tracing::debug!(error = %e, "GeoIP lookup failed; answering empty");
            None
        }
    }
}

/// An ISO 3166-1 alpha-2 code, or nothing.
fn country_code(code: Option<&str>) -> Option<String> {
    code.filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic())).map(str::to_ascii_uppercase)
}

/// Coordinates on Earth, or nothing.
fn coordinates(latitude: Option<f64>, longitude: Option<f64>) -> Option<(f64, f64)> {
    let (lat, lon) = (latitude?, longitude?);
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some((lat, lon))
}

/// Calls [`MaxMindGeoIp::reload_if_changed`] every `every` (at least a second) on the blocking
/// pool, until the task is aborted or the runtime ends. The server uses [`RELOAD_INTERVAL`].
pub fn spawn_reload(geoip: Arc<MaxMindGeoIp>, every: Duration) -> tokio::task::JoinHandle<()> {
    let every = every.max(Duration::from_secs(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let geoip = geoip.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || geoip.reload_if_changed()).await {
                tracing::warn!(error = %e, "the GeoIP reload task failed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    //! Against MaxMind's published test databases (`tests/data/geoip`, see its README): made-up
    //! data with known answers, listed in the `source-data/*.json` files they were built from.

    use std::net::IpAddr;

    use super::*;

    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/geoip").join(name)
    }

    const CITY: &str = "GeoIP2-City-Test.mmdb";
    const COUNTRY: &str = "GeoIP2-Country-Test.mmdb";
    const ASN: &str = "GeoLite2-ASN-Test.mmdb";
    const ANONYMOUS: &str = "GeoIP2-Anonymous-IP-Test.mmdb";
    /// Its search tree claims more nodes than the file holds: refused when opened.
    const CORRUPT: &str = "GeoIP2-City-Test-Invalid-Node-Count.mmdb";
    /// Opens, but its coordinates are encoded as doubles of the wrong size: records fail to decode.
    const BROKEN_RECORDS: &str = "GeoIP2-City-Test-Broken-Double-Format.mmdb";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn all() -> MaxMindGeoIp {
        MaxMindGeoIp::open(GeoIpPaths {
            location: Some(data(CITY)),
            asn: Some(data(ASN)),
            anonymous: Some(data(ANONYMOUS)),
        })
    }

    fn only(location: Option<&str>, asn: Option<&str>, anonymous: Option<&str>) -> MaxMindGeoIp {
        MaxMindGeoIp::open(GeoIpPaths {
            location: location.map(data),
            asn: asn.map(data),
            anonymous: anonymous.map(data),
        })
    }

    #[test]
    fn a_city_database_gives_country_city_coordinates_and_accuracy() {
        let geo = only(Some(CITY), None, None);
        assert_eq!(geo.status(), GeoStatus::Healthy);
        let london = geo.lookup(ip("81.2.69.142"));
        assert_eq!(london.country.as_deref(), Some("GB"));
        assert_eq!(london.city.as_deref(), Some("London"));
        assert_eq!(london.location, Some((51.5142, -0.0931)));
        assert_eq!(london.accuracy_km, Some(10));
        assert_eq!((london.asn, london.network_org.as_deref(), london.anonymizer), (None, None, None));
        // 81.2.69.144/124 is the same place, known more precisely.
        assert_eq!(geo.lookup(ip("81.2.69.150")).accuracy_km, Some(3));

        let linkoping = geo.lookup(ip("89.160.20.112"));
        assert_eq!(linkoping.country.as_deref(), Some("SE"));
        assert_eq!(linkoping.city.as_deref(), Some("Linköping"));
        assert_eq!(linkoping.location, Some((58.4167, 15.6167)));
        assert_eq!(linkoping.accuracy_km, Some(76));

        let boxford = geo.lookup(ip("2.125.160.216"));
        assert_eq!((boxford.country.as_deref(), boxford.city.as_deref()), (Some("GB"), Some("Boxford")));
        assert_eq!((boxford.location, boxford.accuracy_km), (Some((51.75, -1.25)), Some(100)));

        let san_diego = geo.lookup(ip("2001:480:10::1"));
        assert_eq!((san_diego.country.as_deref(), san_diego.city.as_deref()), (Some("US"), Some("San Diego")));
        assert_eq!(san_diego.location, Some((32.7203, -117.1552)));

        // A network with a location but no country (2a02:d500::/29 in the source data).
        let no_country = geo.lookup(ip("2a02:d500::1"));
        assert_eq!((no_country.country, no_country.location), (None, Some((48.69096, 9.14062))));
    }

    #[test]
    fn an_ipv4_mapped_ipv6_address_is_looked_up_as_ipv4() {
        let geo = all();
        assert_eq!(geo.lookup(ip("::ffff:81.2.69.142")), geo.lookup(ip("81.2.69.142")));
        assert_eq!(geo.lookup(ip("::ffff:81.2.69.142")).city.as_deref(), Some("London"));
    }

    #[test]
    fn a_country_database_gives_the_country_and_no_location() {
        let geo = only(Some(COUNTRY), None, None);
        assert_eq!(geo.status(), GeoStatus::Healthy);
        for (address, country) in [("81.2.69.142", "GB"), ("2.125.160.216", "GB"), ("89.160.20.112", "SE")] {
            let info = geo.lookup(ip(address));
            assert_eq!(info.country.as_deref(), Some(country), "{address}");
            assert_eq!((info.city, info.location, info.accuracy_km), (None, None, None), "{address}");
        }
        let caps = geo.capabilities();
        assert!(caps.country && !caps.location && !caps.asn && !caps.anonymizer, "{caps:?}");
    }

    #[test]
    fn an_asn_database_gives_the_network_and_its_organisation() {
        let geo = only(None, Some(ASN), None);
        let telstra = geo.lookup(ip("1.128.0.0"));
        assert_eq!((telstra.asn, telstra.network_org.as_deref()), (Some(1221), Some("Telstra Pty Ltd")));
        assert_eq!(telstra.country, None, "no location database");
        let bredband = geo.lookup(ip("89.160.20.112"));
        assert_eq!((bredband.asn, bredband.network_org.as_deref()), (Some(29518), Some("Bredband2 AB")));
        // 12.81.96.0/19 has a number and no organisation.
        let att = geo.lookup(ip("12.81.96.1"));
        assert_eq!((att.asn, att.network_org), (Some(7018), None));
        let he = geo.lookup(ip("2600:7000::1"));
        assert_eq!((he.asn, he.network_org.as_deref()), (Some(6939), Some("Hurricane Electric, Inc.")));
    }

    #[test]
    fn an_anonymous_ip_database_gives_the_flags() {
        let geo = only(None, None, Some(ANONYMOUS));
        let flags = |address: &str| geo.lookup(ip(address)).anonymizer.unwrap();
        let vpn = Anonymizer { anonymous_vpn: true, ..Anonymizer::default() };
        assert_eq!(flags("1.2.0.1"), vpn, "1.2.0.0/16");
        assert_eq!(flags("1.124.213.1"), Anonymizer { tor_exit: true, anonymous_vpn: true, ..Anonymizer::default() });
        assert_eq!(
            flags("81.2.69.142"),
            Anonymizer { tor_exit: true, public_proxy: true, anonymous_vpn: true, hosting_provider: true }
        );
        assert_eq!(flags("71.160.223.5"), Anonymizer { hosting_provider: true, ..Anonymizer::default() });
        assert_eq!(flags("186.30.236.5"), Anonymizer { public_proxy: true, ..Anonymizer::default() });
        assert_eq!(flags("65.0.0.1"), Anonymizer { tor_exit: true, ..Anonymizer::default() });
        assert_eq!(flags("abcd:1000::1"), Anonymizer { public_proxy: true, ..Anonymizer::default() });
        // With the database loaded, an address it does not list is a known answer: no flag.
        assert_eq!(flags("10.0.0.1"), Anonymizer::default());
        assert!(!flags("10.0.0.1").any());
    }

    #[test]
    fn an_address_no_database_covers_gives_empty_fields() {
        let geo = all();
        for address in ["127.0.0.1", "10.0.0.1", "::1", "192.0.2.1"] {
            let info = geo.lookup(ip(address));
            assert_eq!(info, GeoInfo { anonymizer: Some(Anonymizer::default()), ..GeoInfo::default() }, "{address}");
        }
        // Without the anonymous-IP database the flags are unknown, not "clean".
        assert_eq!(only(Some(CITY), Some(ASN), None).lookup(ip("127.0.0.1")), GeoInfo::default());
    }

    #[test]
    fn all_three_databases_answer_together() {
        let geo = all();
        assert_eq!(geo.status(), GeoStatus::Healthy);
        let info = geo.lookup(ip("89.160.20.112"));
        assert_eq!(info.country.as_deref(), Some("SE"));
        assert_eq!(info.city.as_deref(), Some("Linköping"));
        assert_eq!(info.asn, Some(29518));
        assert_eq!(info.anonymizer, Some(Anonymizer::default()));
        let info = geo.lookup(ip("81.2.69.142"));
        assert!(info.anonymizer.unwrap().tor_exit && info.city.as_deref() == Some("London"));
    }

    #[test]
    fn capabilities_follow_the_files_loaded() {
        let caps = all().capabilities();
        assert_eq!(caps, GeoCapabilities { country: true, location: true, asn: true, anonymizer: true });
        let caps = only(Some(CITY), None, None).capabilities();
        assert_eq!(caps, GeoCapabilities { country: true, location: true, asn: false, anonymizer: false });
        let caps = only(None, Some(ASN), Some(ANONYMOUS)).capabilities();
        assert_eq!(caps, GeoCapabilities { country: false, location: false, asn: true, anonymizer: true });
        // A file that did not load gives nothing.
        let caps = only(Some(CORRUPT), Some(ASN), None).capabilities();
        assert_eq!(caps, GeoCapabilities { country: false, location: false, asn: true, anonymizer: false });
        assert_eq!(MaxMindGeoIp::open(GeoIpPaths::default()).status(), GeoStatus::Off);
    }

    fn degraded(geo: &MaxMindGeoIp) -> String {
        match geo.status() {
            GeoStatus::Degraded(message) => message,
            other => panic!("expected Degraded, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_or_corrupt_file_degrades_without_failing_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("GeoLite2-City.mmdb");
        let geo =
            MaxMindGeoIp::open(GeoIpPaths { location: Some(missing.clone()), asn: Some(data(ASN)), anonymous: None });
        let message = degraded(&geo);
        assert!(message.starts_with(&format!("geoip_db {}: cannot be read", missing.display())), "{message}");
        assert_eq!(geo.lookup(ip("1.128.0.0")).asn, Some(1221), "the ASN database still answers");
        assert_eq!(geo.lookup(ip("81.2.69.142")).country, None);

        let geo = only(None, None, Some(CORRUPT));
        let message = degraded(&geo);
        assert!(message.contains("geoip_anonymous_db") && message.contains(CORRUPT), "{message}");
        assert!(message.contains("not a valid MaxMind DB file"), "{message}");
        assert_eq!(geo.lookup(ip("81.2.69.142")), GeoInfo::default());

        let garbage = dir.path().join("garbage.mmdb");
        std::fs::write(&garbage, b"this is not a database").unwrap();
        let geo = MaxMindGeoIp::open(GeoIpPaths { asn: Some(garbage.clone()), ..GeoIpPaths::default() });
        let message = degraded(&geo);
        assert!(message.starts_with(&format!("geoip_asn_db {}", garbage.display())), "{message}");

        // A directory is not a database either.
        let geo = MaxMindGeoIp::open(GeoIpPaths { location: Some(dir.path().to_owned()), ..GeoIpPaths::default() });
        assert!(degraded(&geo).contains("not a regular file"));
    }

    #[test]
    fn a_database_of_the_wrong_kind_is_refused_by_name() {
        let geo = only(Some(ASN), Some(CITY), None);
        let message = degraded(&geo);
        assert!(message.contains("geoip_db") && message.contains("\"GeoLite2-ASN\""), "{message}");
        assert!(message.contains("geoip_asn_db") && message.contains("\"GeoIP2-City\""), "{message}");
        assert_eq!(geo.capabilities(), GeoCapabilities::default());
        assert_eq!(geo.lookup(ip("81.2.69.142")), GeoInfo::default());
    }

    #[test]
    fn records_that_do_not_decode_give_empty_fields_not_a_panic() {
        let geo = only(Some(BROKEN_RECORDS), None, None);
        assert_eq!(geo.status(), GeoStatus::Healthy, "the file itself opens");
        for address in ["81.2.69.142", "89.160.20.112", "2001:480:10::1", "1.128.0.0"] {
            assert_eq!(geo.lookup(ip(address)), GeoInfo::default(), "{address}");
        }
    }

    #[test]
    fn hot_reload_swaps_changed_files_and_keeps_the_old_copy_of_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("GeoIP2-City.mmdb");
        std::fs::copy(data(CITY), &path).unwrap();
        let geo = MaxMindGeoIp::open(GeoIpPaths { location: Some(path.clone()), ..GeoIpPaths::default() });
        assert_eq!(geo.lookup(ip("81.2.69.142")).city.as_deref(), Some("London"));
        assert!(geo.capabilities().location);
        assert_eq!(geo.reload_if_changed(), 0, "nothing changed");

        // Swap the City database for the Country one, as an operator would: write, then rename.
        let staged = dir.path().join("incoming.mmdb");
        std::fs::copy(data(COUNTRY), &staged).unwrap();
        std::fs::rename(&staged, &path).unwrap();
        assert_eq!(geo.reload_if_changed(), 1);
        let info = geo.lookup(ip("81.2.69.142"));
        assert_eq!((info.country.as_deref(), info.city, info.location), (Some("GB"), None, None));
        assert!(!geo.capabilities().location && geo.capabilities().country);
        assert_eq!(geo.status(), GeoStatus::Healthy);
        assert_eq!(geo.databases()[0].database_type.as_deref(), Some("GeoIP2-Country"));

        // Garbage over it: the Country copy stays in use, and status says so.
        std::fs::write(&path, b"not a MaxMind database, and a different size").unwrap();
        assert_eq!(geo.reload_if_changed(), 0);
        assert_eq!(geo.lookup(ip("81.2.69.142")).country.as_deref(), Some("GB"));
        let message = degraded(&geo);
        assert!(
            message.starts_with(&format!("geoip_db {}: is not a valid MaxMind DB file", path.display())),
            "{message}"
        );
        assert!(message.ends_with("the copy loaded before is still in use"), "{message}");
        // The unchanged garbage is not parsed again, and the problem stays reported.
        assert_eq!(geo.reload_if_changed(), 0);
        assert_eq!(degraded(&geo), message);

        // The file disappears: still the old copy.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(geo.reload_if_changed(), 0);
        assert!(degraded(&geo).contains("cannot be read"));
        assert_eq!(geo.lookup(ip("89.160.20.112")).country.as_deref(), Some("SE"));

        // A good City file again: healthy, with locations.
        std::fs::copy(data(CITY), &path).unwrap();
        assert_eq!(geo.reload_if_changed(), 1);
        assert_eq!(geo.status(), GeoStatus::Healthy);
        assert_eq!(geo.lookup(ip("81.2.69.142")).city.as_deref(), Some("London"));
    }

    #[test]
    fn a_file_missing_at_start_is_loaded_once_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("GeoLite2-ASN.mmdb");
        let geo = MaxMindGeoIp::open(GeoIpPaths { asn: Some(path.clone()), ..GeoIpPaths::default() });
        assert!(degraded(&geo).contains("geoip_asn_db"));
        assert!(!degraded(&geo).contains("still in use"), "nothing was loaded before");
        std::fs::copy(data(ASN), &path).unwrap();
        assert_eq!(geo.reload_if_changed(), 1);
        assert_eq!(geo.status(), GeoStatus::Healthy);
        assert_eq!(geo.lookup(ip("1.128.0.0")).asn, Some(1221));
    }

    #[tokio::test(start_paused = true)]
    async fn the_reload_task_picks_up_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("GeoIP2-City.mmdb");
        std::fs::copy(data(COUNTRY), &path).unwrap();
        let geo = Arc::new(MaxMindGeoIp::open(GeoIpPaths { location: Some(path.clone()), ..GeoIpPaths::default() }));
        let task = spawn_reload(geo.clone(), Duration::from_secs(60));
        std::fs::copy(data(CITY), &path).unwrap();
        // Paused time: each sleep lets the timer fire; the reload itself runs on the blocking pool.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_secs(61)).await;
            if geo.capabilities().location {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(geo.lookup(ip("81.2.69.142")).city.as_deref(), Some("London"));
        task.abort();
    }

    #[test]
    fn databases_describe_what_is_loaded() {
        let info = all().databases();
        let types: Vec<(&str, Option<&str>)> = info.iter().map(|d| (d.setting, d.database_type.as_deref())).collect();
        assert_eq!(
            types,
            [
                ("geoip_db", Some("GeoIP2-City")),
                ("geoip_asn_db", Some("GeoLite2-ASN")),
                ("geoip_anonymous_db", Some("GeoIP2-Anonymous-IP"))
            ]
        );
        assert!(info.iter().all(|d| d.problem.is_none() && d.build_epoch.is_some_and(|e| e > 0)));
    }
}
