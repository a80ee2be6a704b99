//! Parsers for each setting's text, and the masking of secrets for display.
//!
//! Each parser returns the problem as a phrase that follows the value in the error message
//! ("… is not base64"). A parser of a secret must never put any part of its input in the problem,
//! and must not pass on a library's message that might (base64's quotes the bad byte and offset).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use base64::Engine as _;
use ipnet::IpNet;
use lettre::message::{Mailbox, Mailboxes};
use palisade_core::crypto::Algorithm;
use palisade_core::device::service::SessionBinding;
use palisade_core::notify::PhoneNumber;
use palisade_core::risk::{FactorName, RiskSettings, RiskThresholds, RiskWeights};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use url::Url;

use super::settings::Unit;
use super::{CharClass, JwtAlgorithm, LogFormat, SmsProvider, SmtpTls};

pub(crate) fn bind(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>().map_err(|_| "is not an IP address and port".to_owned())
}

pub(crate) fn issuer(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("has the scheme {:?}, not http or https", url.scheme()));
    }
    if url.host().is_none() {
        return Err("has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        // The issuer is published in discovery documents and every token.
        return Err("carries a user name or password".to_owned());
    }
    if url.query().is_some() {
        return Err("has a query (`?…`)".to_owned());
    }
    if url.fragment().is_some() {
        return Err("has a fragment (`#…`)".to_owned());
    }
    Ok(url)
}

/// Secret: the problem never quotes the input.
pub(crate) fn database_url(text: &str) -> Result<SecretString, String> {
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        if text.len() <= "sqlite:".len() {
            return Err("names no SQLite file".to_owned());
        }
    } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        // url's errors name the problem ("invalid port number"), never the input.
        Url::parse(text).map_err(|e| format!("is not a valid postgres URL ({e})"))?;
    } else {
        return Err("is neither a sqlite: nor a postgres:// URL".to_owned());
    }
    Ok(SecretString::from(text))
}

/// Secret: the problem never quotes the input.
pub(crate) fn redis_url(text: &str) -> Result<SecretString, String> {
    let url = Url::parse(text).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "redis" | "rediss" | "redis+cluster") {
        return Err("does not start with redis://, rediss:// or redis+cluster://".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    Ok(SecretString::from(text))
}

/// Secret: validates base64 of exactly 32 bytes, as `palisade_core::crypto::MasterKey::from_base64`
/// will read it (standard alphabet, padding optional, surrounding whitespace ignored). The problem
/// never quotes the input, not even the offending character.
pub(crate) fn master_key(text: &str) -> Result<SecretString, String> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    // Decoded bytes are key material: SecretSlice wipes them on drop.
    let bytes: SecretSlice<u8> = engine
        .decode(text)
        .map_err(|_| "is not base64 (standard alphabet A-Z a-z 0-9 + /, optional = padding)".to_owned())?
        .into();
    let length = bytes.expose_secret().len();
    if length != 32 {
        return Err(format!("decodes to {length} bytes instead of 32 (a passphrase is not a key: generate one)"));
    }
    Ok(SecretString::from(text))
}

/// The path of a PKCS#11 module. Not opened here: `palisade_server::hsm` loads it at start and
/// names this setting if it cannot.
pub(crate) fn hsm_module(text: &str) -> Result<PathBuf, String> {
    if text.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    if text.trim() != text {
        return Err("starts or ends with white space".to_owned());
    }
    Ok(PathBuf::from(text))
}

/// Secret: the problem never quotes the input.
pub(crate) fn hsm_pin(text: &str) -> Result<SecretString, String> {
    let length = text.chars().count();
    if !(4..=255).contains(&length) {
        return Err(format!("is {length} characters long instead of 4 to 255"));
    }
    if text.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    Ok(SecretString::from(text))
}

/// Information only.
pub(crate) fn hsm_provider(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 || text.chars().any(char::is_control) {
        return Err("is not 1 to 64 printable characters".to_owned());
    }
    Ok(text.to_owned())
}

/// A whole number from `min` to `max`, written in `unit` (`None`: a plain count). Every numeric
/// setting is read with this, with the unit and range of its row in the settings table.
pub(crate) fn whole(text: &str, (unit, min, max): (Option<Unit>, u64, u64)) -> Result<u64, String> {
    let amount = |n: u64| unit.map_or_else(|| n.to_string(), |unit| unit.of(n));
    let n: u64 = match text.parse() {
        Ok(n) => n,
        Err(_) if text.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!("is above the maximum, {}", amount(max)));
        }
        Err(_) => {
            return Err(match unit {
                Some(unit) => format!("is not a whole number of {}", unit.name()),
                None => "is not a whole number".to_owned(),
            });
        }
    };
    if n < min {
        Err(format!("is below the minimum, {}", amount(min)))
    } else if n > max {
        Err(format!("is above the maximum, {}", amount(max)))
    } else {
        Ok(n)
    }
}

/// Case-insensitive; stored as the canonical [`JwtAlgorithm`].
pub(crate) fn jwt_algorithm(text: &str) -> Result<JwtAlgorithm, String> {
    let found = [JwtAlgorithm::EdDSA, JwtAlgorithm::ES256, JwtAlgorithm::RS256, JwtAlgorithm::HS256]
        .into_iter()
        .find(|alg| alg.as_str().eq_ignore_ascii_case(text));
    match found {
        Some(alg) => Ok(alg),
        None if text.eq_ignore_ascii_case("none") => {
            Err("is not a signing algorithm (unsigned tokens are never issued or accepted)".to_owned())
        }
        None => Err("is not a supported algorithm".to_owned()),
    }
}

/// Secret. Its length is checked with the algorithm, in `Config::build`: it is only needed for
/// HS256, and a guide-era `JWT_SECRET_KEY` left in the environment must not stop an EdDSA server.
pub(crate) fn jwt_secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text))
}

/// The bytes HS256 needs at least: its key should be as long as its 256-bit output (RFC 7518 §3.2).
pub(crate) const HS256_MIN_SECRET_BYTES: usize = 32;

pub(crate) fn audience(text: &str) -> Result<String, String> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or a control character".to_owned());
    }
    Ok(text.to_owned())
}

pub(crate) fn api_key_prefix(text: &str) -> Result<String, String> {
    let well_formed = (2..=16).contains(&text.len())
        && text.ends_with('_')
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err("not 2 to 16 lower-case letters, digits or underscores ending with `_`".to_owned());
    }
    Ok(text.to_owned())
}

/// Duplicates are dropped; the result is in the order upper, lower, digit, symbol.
pub(crate) fn password_require(text: &str) -> Result<Vec<CharClass>, String> {
    let mut wanted = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let class = CharClass::ALL
            .into_iter()
            .find(|class| class.as_str().eq_ignore_ascii_case(entry))
            .ok_or_else(|| format!("contains {entry:?}, which is not a character class"))?;
        wanted.push(class);
    }
    Ok(CharClass::ALL.into_iter().filter(|class| wanted.contains(class)).collect())
}

pub(crate) fn trusted_proxies(text: &str) -> Result<Vec<IpNet>, String> {
    cidr_list(text)
}

/// Addresses and networks, comma-separated: a bare address is a /32 or /128, host bits must be
/// zero, duplicates are dropped. Shared by `trusted_proxies` and the risk deny and allow lists.
pub(crate) fn cidr_list(text: &str) -> Result<Vec<IpNet>, String> {
    let mut nets: Vec<IpNet> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let net = if let Ok(net) = entry.parse::<IpNet>() {
            // 10.0.0.5/8 is ambiguous (one host or the whole /8?), and trusting (or refusing, or
            // exempting) too much is a security mistake: make the operator say which.
            if net.trunc() != net {
                return Err(format!(
                    "contains {entry:?}, whose host bits are not zero (did you mean {} or {}?)",
                    net.trunc(),
                    IpNet::from(net.addr())
                ));
            }
            net
        } else if let Ok(ip) = entry.parse::<IpAddr>() {
            IpNet::from(ip)
        } else {
            return Err(format!("contains {entry:?}, which is not an IP address or CIDR network"));
        };
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    Ok(nets)
}

pub(crate) fn log_format(text: &str) -> Result<LogFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("is not a log format".to_owned()),
    }
}

pub(crate) fn log_level(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(text)
        .map(|_| text.to_owned())
        .map_err(|e| format!("is not a valid filter ({e})"))
}

/// `true`/`false`, and the spellings operators and the original guide's `.env` files use.
pub(crate) fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err("is not true or false".to_owned()),
    }
}

/// `monitoring_responses`: core's rule grammar, its durations in whole seconds like every duration here.
pub(crate) fn response_rules(text: &str) -> Result<palisade_core::monitoring::ResponseRules, String> {
    palisade_core::monitoring::ResponseRules::parse(text, |seconds| {
        seconds
            .parse::<i64>()
            .map(time::Duration::seconds)
            .map_err(|_| format!("`{seconds}` is not a whole number of seconds"))
    })
}

/// Shown by authenticator apps as `issuer:account`, so it must not hold the separator.
pub(crate) fn mfa_issuer(text: &str) -> Result<String, String> {
    if text.contains(':') {
        return Err("contains `:`, which authenticator apps read as the end of the issuer".to_owned());
    }
    if text.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    if text.chars().count() > 64 {
        return Err("is longer than 64 characters".to_owned());
    }
    Ok(text.to_owned())
}

/// Roles by their canonical name in `palisade_core::mfa::KNOWN_ROLES`, read in any letter case;
/// duplicates are dropped.
pub(crate) fn mfa_required_roles(text: &str) -> Result<Vec<String>, String> {
    let known = palisade_core::mfa::KNOWN_ROLES;
    let mut roles: Vec<String> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some(role) = known.iter().find(|role| role.eq_ignore_ascii_case(entry)) else {
            return Err(format!(
                "contains {entry:?}, which is not a role Palisade knows (known roles: {})",
                known.join(", ")
            ));
        };
        if !roles.iter().any(|r| r == role) {
            roles.push((*role).to_owned());
        }
    }
    Ok(roles)
}

/// A host name or an IP address (an IPv6 one bare or in brackets), lower-cased; no port, no scheme.
pub(crate) fn smtp_server(text: &str) -> Result<String, String> {
    if text.contains("://") {
        return Err("has a scheme; give the bare host name (the encryption is chosen by smtp_tls)".to_owned());
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().map(|ip| ip.to_string()).map_err(|_| "is not an IPv6 address".to_owned());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if text.contains(':') {
        return Err("contains `:`; give the port in smtp_port".to_owned());
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err("is not a host name (letters, digits, `-` and dots; an internationalised name in its \
                    xn-- form) or an IP address"
            .to_owned());
    }
    Ok(name.to_ascii_lowercase())
}

pub(crate) fn smtp_username(text: &str) -> Result<String, String> {
    if text.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    Ok(text.to_owned())
}

/// Secret: any text; the problem never quotes the input.
pub(crate) fn smtp_password(text: &str) -> Result<SecretString, String> {
    if text.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    Ok(SecretString::from(text))
}

pub(crate) fn smtp_tls(text: &str) -> Result<SmtpTls, String> {
    [SmtpTls::StartTls, SmtpTls::Tls, SmtpTls::Off]
        .into_iter()
        .find(|mode| mode.as_str().eq_ignore_ascii_case(text))
        .ok_or_else(|| "is not an encryption mode".to_owned())
}

/// One mailbox, `Name <address>` or a bare address, as lettre will write it in the From header.
pub(crate) fn smtp_from(text: &str) -> Result<Mailbox, String> {
    // Parsed as a list so that a second mailbox is refused rather than silently dropped.
    let mailboxes: Mailboxes = text.parse().map_err(|e| format!("is not a mailbox ({e})"))?;
    let mut iter = mailboxes.into_iter();
    match (iter.next(), iter.next()) {
        (Some(mailbox), None) => Ok(mailbox),
        (Some(_), _) => Err("names more than one mailbox".to_owned()),
        (None, _) => Err("is not a mailbox".to_owned()),
    }
}

pub(crate) fn sms_provider(text: &str) -> Result<SmsProvider, String> {
    if text.eq_ignore_ascii_case(SmsProvider::Twilio.as_str()) {
        Ok(SmsProvider::Twilio)
    } else {
        Err("is not a supported SMS provider".to_owned())
    }
}

/// `AC` and 32 hexadecimal digits. It becomes part of the API URL's path, so nothing else passes.
pub(crate) fn twilio_account_sid(text: &str) -> Result<String, String> {
    let hex = text.strip_prefix("AC").filter(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()));
    match hex {
        Some(_) => Ok(text.to_owned()),
        None if text.starts_with("SK") => {
            Err("is an API key SID (SK…), not the account SID (AC…) that Messages are sent under".to_owned())
        }
        None => Err("is not an account SID".to_owned()),
    }
}

/// Secret: the problem never quotes the input.
pub(crate) fn twilio_auth_token(text: &str) -> Result<SecretString, String> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or a control character".to_owned());
    }
    Ok(SecretString::from(text))
}

pub(crate) fn twilio_from(text: &str) -> Result<PhoneNumber, String> {
    PhoneNumber::parse(text).map_err(|_| "is not an E.164 phone number".to_owned())
}

/// The same rules as the issuer: http or https, a host, no credentials, query or fragment.
pub(crate) fn twilio_base_url(text: &str) -> Result<Url, String> {
    issuer(text)
}

/// A WebAuthn relying party id: a domain name (ASCII, lower case; `localhost` too), no scheme, port
/// or path. Browsers refuse IP addresses as relying party ids.
pub(crate) fn webauthn_rp_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.contains("://") || text.contains(['/', ':', '?', '#', '@']) {
        return Err("is not a bare domain name (no scheme, port or path)".to_owned());
    }
    if text.parse::<std::net::IpAddr>().is_ok() {
        return Err("is an IP address, which browsers refuse as a relying party id".to_owned());
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if text.is_empty() || text.len() > 253 || !text.split('.').all(valid_label) {
        return Err("is not a lower-case domain name".to_owned());
    }
    Ok(text.to_owned())
}

/// A WebAuthn origin: http(s), a host, no path (but `/`), query, fragment or credentials; plain
/// http only for `localhost` (the only insecure context browsers allow WebAuthn on).
pub(crate) fn webauthn_origin(text: &str) -> Result<Url, String> {
    let url = issuer(text)?;
    if url.path() != "/" {
        return Err("has a path: an origin is scheme://host[:port] only".to_owned());
    }
    if url.scheme() == "http" && url.host_str() != Some("localhost") {
        return Err("is plain http on a host other than localhost, where browsers refuse WebAuthn".to_owned());
    }
    Ok(url)
}

/// A path to a MaxMind DB file. Whether it exists and holds a database is checked when it is
/// loaded: a missing or damaged file degrades the GeoIP signals, it does not stop start-up.
pub(crate) fn geoip_path(text: &str) -> Result<PathBuf, String> {
    if text.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    Ok(PathBuf::from(text))
}

/// `mfa,enhanced,block`, checked by `RiskSettings::validate`.
pub(crate) fn risk_thresholds(text: &str) -> Result<RiskThresholds, String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [mfa, enhanced, block] = parts.as_slice() else {
        return Err(format!("has {} comma-separated values instead of three", parts.len()));
    };
    let thresholds = RiskThresholds { mfa: fraction(mfa)?, enhanced: fraction(enhanced)?, block: fraction(block)? };
    RiskSettings { thresholds, ..RiskSettings::default() }
        .validate()
        .map_err(|problem| format!("is refused: {problem}"))?;
    Ok(thresholds)
}

/// A finite number (its range is checked by `RiskSettings::validate`).
fn fraction(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("contains {text:?}, which is not a number such as 0.5"))
}

/// The factors whose weight can be set, for messages.
fn weighted_factors() -> String {
    FactorName::ALL
        .into_iter()
        .filter(|f| *f != FactorName::DeniedAddress)
        .map(FactorName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `factor=weight,…` over the built-in weights; each factor at most once.
pub(crate) fn risk_weights(text: &str) -> Result<RiskWeights, String> {
    let mut weights = RiskWeights::default();
    let mut seen: Vec<FactorName> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, weight)) = entry.split_once('=') else {
            return Err(format!("contains {entry:?}, which is not factor=weight"));
        };
        let name = name.trim().to_ascii_lowercase();
        let Some(factor) = FactorName::parse(&name) else {
            return Err(format!(
                "contains {name:?}, which is not a risk factor (the factors are: {})",
                weighted_factors()
            ));
        };
        if seen.contains(&factor) {
            return Err(format!("sets {name} twice"));
        }
        seen.push(factor);
        let weight = fraction(weight.trim())?;
        if !weights.set(factor, weight) {
            return Err(format!(
                "sets {name}, whose weight is fixed at 1: a login from an address on the deny list is always \
                 refused (to stop refusing an address, take it off risk_deny_cidrs)"
            ));
        }
    }
    RiskSettings { weights, ..RiskSettings::default() }
        .validate()
        .map_err(|problem| format!("is refused: {problem}"))?;
    Ok(weights)
}

/// AES-256-GCM or XCHACHA20-POLY1305, in any letter case and with `_` for `-` (the original
/// guide's `AES_256_GCM`); stored as the canonical [`Algorithm`].
pub(crate) fn encryption_algorithm(text: &str) -> Result<Algorithm, String> {
    Algorithm::parse(text).ok_or_else(|| "is not a supported cipher".to_owned())
}

/// `CLASS.key=value,…`, trimmed, empty entries dropped, in order (a later entry for the same class
/// and key wins). Each entry is checked when the policies are built (`Config::build`), by the same
/// code the encryption service uses, so the message is the service's own.
pub(crate) fn encryption_policies(text: &str) -> Result<Vec<String>, String> {
    Ok(text.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect())
}

pub(crate) fn session_binding(text: &str) -> Result<SessionBinding, String> {
    SessionBinding::parse(&text.to_ascii_lowercase()).ok_or_else(|| "is not a binding level".to_owned())
}

/// Secret (the path or query of a webhook URL is often its only credential): the problem never
/// quotes the input. http or https, a host, no fragment; credentials in it are sent as basic auth.
pub(crate) fn notify_webhook_url(text: &str) -> Result<SecretString, String> {
    let url = Url::parse(text).map_err(|e| format!("is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("is not an http:// or https:// URL".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    if url.fragment().is_some() {
        return Err("has a fragment (`#…`), which is never sent to the server".to_owned());
    }
    Ok(SecretString::from(text))
}

/// `monitoring_alert_webhook_url` and `monitoring_push_url`: secrets under the same rules as
/// `notify_webhook_url` (the problem never quotes the input).
pub(crate) fn alert_url(text: &str) -> Result<SecretString, String> {
    notify_webhook_url(text)
}

/// The bytes the alert signing key needs at least: as long as HMAC-SHA256's output.
pub(crate) const ALERT_SECRET_MIN_BYTES: usize = 32;

/// Secret: the HMAC-SHA256 key of the alert channels, its UTF-8 bytes as written. The problem
/// never quotes the input.
pub(crate) fn alert_webhook_secret(text: &str) -> Result<SecretString, String> {
    if text.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    let length = text.len();
    if length < ALERT_SECRET_MIN_BYTES {
        return Err(format!(
            "is {length} bytes long; an HMAC-SHA256 key needs at least {ALERT_SECRET_MIN_BYTES} (generate one)"
        ));
    }
    Ok(SecretString::from(text))
}

/// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`, in any letter case.
pub(crate) fn severity(text: &str) -> Result<palisade_core::monitoring::Severity, String> {
    palisade_core::monitoring::Severity::parse(text).ok_or_else(|| "is not a severity".to_owned())
}

/// E-mail addresses, comma-separated, each as core reads an account's address; duplicates (after
/// core's normalisation) are dropped, the order kept.
pub(crate) fn email_list(text: &str) -> Result<Vec<palisade_core::user::Email>, String> {
    let mut emails: Vec<palisade_core::user::Email> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let email = palisade_core::user::Email::parse(entry)
            .map_err(|_| format!("contains {entry:?}, which is not an e-mail address"))?;
        if !emails.contains(&email) {
            emails.push(email);
        }
    }
    Ok(emails)
}

/// A webhook URL for display: scheme, host and port, the rest `***` (its path or query may be the
/// credential, and user:password@ certainly is).
pub(crate) fn mask_webhook_url(text: &str) -> String {
    let Ok(url) = Url::parse(text) else {
        return "***".to_owned();
    };
    let origin = url.origin().ascii_serialization();
    if origin == "null" {
        return "***".to_owned();
    }
    let hidden = !url.username().is_empty() || url.password().is_some() || url.path() != "/" || url.query().is_some();
    if hidden { format!("{origin}/***") } else { format!("{origin}/") }
}

/// A URL with its password, and any query value whose name suggests a credential, replaced by
/// `***`. Anything that does not parse as a URL is replaced whole: better too little shown than
/// a secret.
pub(crate) fn mask_url(text: &str) -> String {
    if text.to_ascii_lowercase().starts_with("sqlite:") && !text.contains('@') && !text.contains('?') {
        return text.to_owned();
    }
    let Ok(mut url) = Url::parse(text) else {
        return "***".to_owned();
    };
    if url.password().is_some() && url.set_password(Some("***")).is_err() {
        return "***".to_owned();
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                let sensitive = ["pass", "secret", "token", "key", "auth", "cred"].iter().any(|w| lower.contains(w));
                let value = if sensitive { "***".to_owned() } else { value.into_owned() };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// A consent type as core reads one (`palisade_core::compliance::ConsentType`).
fn consent_type(entry: &str) -> Result<String, String> {
    palisade_core::compliance::ConsentType::parse(entry).map(|t| t.as_str().to_owned()).map_err(|_| {
        format!("contains {entry:?}, which is not a consent type (1 to 64 lowercase letters, digits, _, -, . or :)")
    })
}

/// `compliance_erasure_on_withdrawal`: consent types, comma-separated, duplicates dropped; `none`
/// for no type at all.
pub(crate) fn consent_types(text: &str) -> Result<Vec<String>, String> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut types: Vec<String> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let name = consent_type(entry)?;
        if !types.contains(&name) {
            types.push(name);
        }
    }
    if types.is_empty() {
        return Err("names no consent type (write none for no type)".to_owned());
    }
    Ok(types)
}

/// The range of each duration of `compliance_consent_validity_per_type`, in seconds (that of
/// `compliance_consent_validity`).
pub(crate) const CONSENT_VALIDITY_SECONDS: (u64, u64) = (60, 315_360_000);

/// `compliance_consent_validity_per_type`: `type=seconds`, comma-separated; a type at most once.
pub(crate) fn consent_validity_per_type(
    text: &str,
) -> Result<std::collections::BTreeMap<String, std::time::Duration>, String> {
    let mut out = std::collections::BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, seconds)) = entry.split_once('=') else {
            return Err(format!("contains {entry:?}, which is not type=seconds"));
        };
        let name = consent_type(name.trim())?;
        let (min, max) = CONSENT_VALIDITY_SECONDS;
        let seconds = whole(seconds.trim(), (Some(Unit::Seconds), min, max))
            .map_err(|problem| format!("gives {name} a validity that {problem}"))?;
        if out.insert(name.clone(), std::time::Duration::from_secs(seconds)).is_some() {
            return Err(format!("names {name} twice"));
        }
    }
    Ok(out)
}
