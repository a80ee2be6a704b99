//! The GeoIP port: where an address is, which network it belongs to, and whether it is a known
//! anonymizer. Lookups are in process and synchronous (a memory-resident database), so the risk
//! engine and the per-request hijack check may call them on the hot path.
//!
//! The adapter (MaxMind DB files) lives in `palisade-server`; without a database every lookup is
//! empty and the geo factors say they are absent, never invented.

use std::net::IpAddr;

/// What a GeoIP database knows about one address. Every field is optional: a City database knows
/// the place, an ASN database the network, an Anonymous-IP database the anonymizer flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// City name (English).
    pub city: Option<String>,
    /// Latitude and longitude in degrees.
    pub location: Option<(f64, f64)>,
    /// The radius, in kilometres, the location is accurate to.
    pub accuracy_km: Option<u32>,
    /// Autonomous system number of the network.
    pub asn: Option<u32>,
    /// The network's organisation.
    pub network_org: Option<String>,
    /// The address is a Tor exit, public proxy, anonymous VPN or hosting provider (as far as the
    /// database says); `None` when no database carries the flags.
    pub anonymizer: Option<Anonymizer>,
}

/// The anonymizer flags of an address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Anonymizer {
    /// A Tor exit node.
    pub tor_exit: bool,
    /// A public proxy.
    pub public_proxy: bool,
    /// A commercial anonymous VPN.
    pub anonymous_vpn: bool,
    /// A hosting or cloud provider (often a VPN or a bot).
    pub hosting_provider: bool,
}

impl Anonymizer {
    /// Whether any flag is set.
    pub fn any(&self) -> bool {
        self.tor_exit || self.public_proxy || self.anonymous_vpn || self.hosting_provider
    }

    /// The names of the flags set, for an explanation.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.tor_exit {
            out.push("tor_exit");
        }
        if self.public_proxy {
            out.push("public_proxy");
        }
        if self.anonymous_vpn {
            out.push("anonymous_vpn");
        }
        if self.hosting_provider {
            out.push("hosting_provider");
        }
        out
    }
}

/// Which kinds of answer the databases loaded can give.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeoCapabilities {
    /// Countries (a City or Country database).
    pub country: bool,
    /// Coordinates (a City database).
    pub location: bool,
    /// Autonomous systems (an ASN database).
    pub asn: bool,
    /// Anonymizer flags (an Anonymous-IP database).
    pub anonymizer: bool,
}

/// The health of the GeoIP databases, for `/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeoStatus {
    /// No database configured: geo factors are off by choice.
    Off,
    /// Every configured database is loaded.
    Healthy,
    /// A configured database is missing or unreadable (named in the message); lookups use what is
    /// loaded, which may be nothing.
    Degraded(String),
}

/// Looks addresses up in GeoIP databases.
pub trait GeoIp: Send + Sync + 'static {
    /// What the databases know about `ip`; an address they do not cover gives an empty answer.
    fn lookup(&self, ip: IpAddr) -> GeoInfo;

    /// Which kinds of answer the loaded databases can give (so an empty field can be told apart
    /// from a missing database in an explanation).
    fn capabilities(&self) -> GeoCapabilities;

    /// Health for `/ready`.
    fn status(&self) -> GeoStatus;
}

/// No database: every lookup is empty.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoGeoIp;

impl GeoIp for NoGeoIp {
    fn lookup(&self, _ip: IpAddr) -> GeoInfo {
        GeoInfo::default()
    }

    fn capabilities(&self) -> GeoCapabilities {
        GeoCapabilities::default()
    }

    fn status(&self) -> GeoStatus {
        GeoStatus::Off
    }
}

/// Great-circle distance in kilometres between two points given in degrees (haversine, mean Earth
/// radius 6371.0088 km).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0088;
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_known_city_pairs() {
        // Paris – New York ≈ 5837 km, London – Sydney ≈ 16994 km (published great-circle figures).
        let paris = (48.8566, 2.3522);
        let new_york = (40.7128, -74.0060);
        let d = distance_km(paris, new_york);
        assert!((d - 5837.0).abs() < 15.0, "{d}");
        let london = (51.5074, -0.1278);
        let sydney = (-33.8688, 151.2093);
        let d = distance_km(london, sydney);
        assert!((d - 16994.0).abs() < 30.0, "{d}");
        assert!(distance_km(paris, paris).abs() < 1e-9);
        // Antipodes: half the circumference, no NaN from rounding past 1.
        let d = distance_km((0.0, 0.0), (0.0, 180.0));
        assert!((d - std::f64::consts::PI * 6371.0088).abs() < 1e-6, "{d}");
    }
}
