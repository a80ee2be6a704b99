//! [`HttpKeySetFetcher`]: the [`KeySetFetcher`] that fetches the key sets OAuth clients publish at
//! their `jwks_uri`, over reqwest.
//!
//! A client chooses the URI and Palisade fetches it, so the fetch is made with the rules of a request
//! on an outsider's behalf (server-side request forgery, OWASP ASVS V1.3.6 and the OAuth 2.0 Security
//! BCP §4.16):
//! - `https` only; plain `http` only where private addresses are allowed (registration accepts
//!   `http` only on a loopback host).
//! - Every address the host resolves to must be public: loopback, private (RFC 1918, unique local),
//!   link-local (which holds cloud metadata services), shared (RFC 6598), unspecified, multicast,
//!   broadcast and documentation ranges are refused, for IP literals and resolved names alike. The
//!   check is made by the resolver the connection uses, so a name cannot pass the check with one
//!   address and connect to another (DNS rebinding). `oauth2_allow_private_jwks_uri` lifts it for
//!   clients on an internal network and for tests.
//! - No redirects are followed, no proxy from the environment is used, the connection must open
//!   within [`CONNECT_TIMEOUT`] and the answer arrive within [`FETCH_TIMEOUT`], and only a `200`
//!   whose body is at most [`MAX_KEY_SET_BYTES`] is read (larger ones are cut off, not buffered).

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use palisade_core::oauth::client_keys::{FetchError, KeySetFetcher, MAX_KEY_SET_BYTES};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long the connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the whole fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches `jwks_uri` documents.
pub struct HttpKeySetFetcher {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpKeySetFetcher {
    /// A fetcher; `allow_private` lets URIs reach loopback and private addresses.
    pub fn new(allow_private: bool) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PublicOnly { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("Palisade/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, allow_private })
    }
}

#[async_trait]
impl KeySetFetcher for HttpKeySetFetcher {
    async fn fetch(&self, uri: &str) -> Result<String, FetchError> {
        let url = url::Url::parse(uri).map_err(|_| FetchError::Refused("not an absolute URI".into()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            scheme => return Err(FetchError::Refused(format!("the scheme {scheme} is not https"))),
        }
        // An IP literal is connected to without the resolver: check it here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(FetchError::Refused("no host".into())),
        };
        if let Some(ip) = literal
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(FetchError::Refused(format!("{ip} is not a public address")));
        }
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|e| match forbidden_in(&e) {
                Some(refusal) => FetchError::Refused(refusal.to_string()),
                None => FetchError::Failed(describe(&e)),
            })?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Failed(format!("the answer was {}, not 200", response.status())));
        }
        if response.content_length().is_some_and(|n| n > MAX_KEY_SET_BYTES as u64) {
            return Err(FetchError::Failed(format!("the document is over {MAX_KEY_SET_BYTES} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Failed(describe(&e)))? {
            if body.len() + chunk.len() > MAX_KEY_SET_BYTES {
                return Err(FetchError::Failed(format!("the document is over {MAX_KEY_SET_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| FetchError::Failed("the document is not UTF-8".into()))
    }
}

/// The kind of a reqwest failure, without its URL (which the client chose; the audit record names
/// the client already).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "no connection".into()
    } else if e.is_redirect() {
        "redirected".into()
    } else {
        "the answer could not be read".into()
    }
}

/// The resolver's refusal, if that is why `e` happened.
fn forbidden_in(e: &reqwest::Error) -> Option<&Forbidden> {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(error) = cause {
        if let Some(forbidden) = error.downcast_ref::<Forbidden>() {
            return Some(forbidden);
        }
        cause = error.source();
    }
    None
}

/// The resolver refused a name: it resolves to an address that is not public.
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves to {ip}, which is not a public address")]
struct Forbidden {
    name: String,
    ip: IpAddr,
}

/// Resolves names with the system's resolver and refuses those with a non-public address.
struct PublicOnly {
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(Box::new(Forbidden { name: host, ip: bad.ip() }) as Box<dyn StdError + Send + Sync>);
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `ip` is a public unicast address, one a fetch on a client's behalf may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // 0.0.0.0/8 ("this network"), 100.64.0.0/10 (shared, RFC 6598), 192.0.0.0/24 (protocol
        // assignments), 198.18.0.0/15 (benchmarking), 240.0.0.0/4 (reserved).
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // 64:ff9b::/96 (NAT64 of any IPv4 address, private ones included), 2001:db8::/32
        // (documentation), ::/96 (IPv4-compatible, deprecated).
        || (first == 0x64 && ip.segments()[1] == 0xff9b)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || ip.segments()[..6].iter().all(|s| *s == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for public in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "100.128.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    #[tokio::test]
    async fn non_https_and_private_literals_are_refused_before_any_connection() {
        let fetcher = HttpKeySetFetcher::new(false).unwrap();
        for uri in [
            "http://rp.example/jwks",
            "ftp://rp.example/jwks",
            "https://127.0.0.1/jwks",
            "https://[::1]/jwks",
            "https://169.254.169.254/latest",
            "https://10.0.0.1/jwks",
        ] {
            assert!(matches!(fetcher.fetch(uri).await, Err(FetchError::Refused(_))), "{uri}");
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_by_the_resolver() {
        let fetcher = HttpKeySetFetcher::new(false).unwrap();
        let refused = fetcher.fetch("https://localhost:9/jwks").await;
        assert!(
            matches!(&refused, Err(FetchError::Refused(why)) if why.contains("localhost resolves to")),
            "{refused:?}"
        );
    }
}
