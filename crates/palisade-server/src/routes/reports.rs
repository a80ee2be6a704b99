//! Compliance reports over HTTP (`GET /compliance/reports/{standard}`): parse the standard, the
//! range and the format, call `ComplianceReports::report`, and shape the answer as JSON or as a
//! printable page. Also what the reports need to know about the deployment from the configuration
//! ([`deployment_facts`]), and the page's renderer, shared with `palisade compliance report`.
//!
//! The page is rendered here, on the server, with every text escaped; it carries no script, and its
//! Content-Security-Policy lets it load only its style sheet from this origin.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_core::compliance::Standard;
use palisade_core::compliance::report::{
    DEFAULT_RANGE, DISCLAIMER, DeploymentFacts, MasterKeySource, Report, StoreLink, WORDING,
};
use palisade_types::reports::{
    ComplianceReport, ControlView, EvidenceQueryView, EvidenceView, ReportRange, ViolationSummary,
};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::config::{Config, Setting};
use crate::error::ApiError;
use crate::extract::{Authenticated, Meta};

/// The page's style sheet.
const REPORT_CSS: &str = include_str!("../pages/report.css");

/// Where the page finds its style sheet.
const REPORT_CSS_PATH: &str = "/compliance/report.css";

/// The page loads its style sheet and nothing else: no script, no image, no frame, no form.
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /compliance/reports/{standard}`'s parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportParams {
    /// The range of the audit queries in seconds, ending now (300 to 31622400; default 2592000,
    /// the last 30 days).
    range: Option<i64>,
    /// `json` (the default) or `html` (a printable page). Without it, `Accept: text/html` asks for
    /// the page.
    format: Option<String>,
}

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// The report as JSON.
    Json,
    /// A printable page.
    Html,
}

impl ReportFormat {
    /// `json` or `html`, any letter case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "html" => Some(Self::Html),
            _ => None,
        }
    }

    /// `format` when given, else the page when `Accept` names `text/html`, else JSON.
    fn pick(format: Option<&str>, headers: &HeaderMap) -> Result<Self, ApiError> {
        if let Some(text) = format {
            return Self::parse(text)
                .ok_or_else(|| ApiError::unprocessable(format!("format: `{text}` is not json or html")));
        }
        let accepts_html = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|media| media.trim().to_ascii_lowercase().starts_with("text/html"));
        Ok(if accepts_html { Self::Html } else { Self::Json })
    }
}

/// The standard named in a path, or a 404 that lists the ones Palisade knows.
pub(crate) fn parse_standard(text: &str) -> Result<Standard, ApiError> {
    Standard::parse(text.trim()).ok_or_else(|| {
        let names: Vec<&str> = Standard::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::refused(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no report for `{text}`: the standards are {}", names.join(", ")),
        )
    })
}

/// A report of technical control checks for one standard (`GDPR`, `HIPAA`, `PCI_DSS`, `SOX`,
/// `ISO27001`): each control Palisade measured on itself with its status, evidence (the measured
/// value, what is expected, the settings involved with secrets masked, the query and its result)
/// and a recommendation; the score is met / total. JSON by default; `format=html` or
/// `Accept: text/html` gives a printable page. A standard turned off (`compliance_*_enabled`) or
/// unknown answers 404 saying so. Every report is audited as `compliance.report`. Never a
/// certification: see the `disclaimer`.
///
/// **Permissions** - `admin`, `compliance:read` or `compliance:admin`
#[utoipa::path(get, path = "/compliance/reports/{standard}", tag = "compliance", security(("bearer" = []), ("api_key" = [])), params(("standard" = String, Path, description = "GDPR, HIPAA, PCI_DSS, SOX or ISO27001"), ReportParams), responses(
    (status = 200, description = "the report as JSON, or the printable page (format=html or Accept: text/html)", content(
        (ComplianceReport = "application/json"),
        (String = "text/html"),
    )),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND: an unknown standard, or one turned off in this deployment", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: a range outside 300–31622400 seconds, or a format other than json or html", body = palisade_types::problem::Problem),
))]
pub(crate) async fn report(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(standard): Path<String>,
    Query(params): Query<ReportParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let standard = parse_standard(&standard)?;
    let format = ReportFormat::pick(params.format.as_deref(), &headers)?;
    let range = time::Duration::seconds(params.range.unwrap_or(DEFAULT_RANGE.whole_seconds()));
    let report = state.palisade.compliance_reports().report(&principal, standard, range, &meta).await?;
    let view = report_view(&report);
    Ok(match format {
        ReportFormat::Json => Json(view).into_response(),
        ReportFormat::Html => page(render_html(&view, Styles::Linked)),
    })
}

/// The page's style sheet.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/compliance/report.css", tag = "compliance", responses((status = 200, description = "the style sheet", content_type = "text/css")))]
pub(crate) async fn stylesheet() -> Response {
    let mut response = REPORT_CSS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn page(html: String) -> Response {
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The report describes the deployment's weaknesses: no cache keeps a copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The wire form of a report.
pub fn report_view(report: &Report) -> ComplianceReport {
    let controls = report
        .controls
        .iter()
        .map(|c| ControlView {
            id: c.id.as_str().to_owned(),
            title: c.id.title().to_owned(),
            requirement: c.requirement.to_owned(),
            status: c.status.as_str().to_owned(),
            evidence: EvidenceView {
                measured: c.evidence.measured.clone(),
                expected: c.evidence.expected.clone(),
                config: c.evidence.config.clone(),
                query: c
                    .evidence
                    .query
                    .as_ref()
                    .map(|q| EvidenceQueryView { description: q.description.clone(), result: q.result.clone() }),
            },
            recommendation: c.recommendation.clone(),
        })
        .collect();
    let violations = report
        .violations()
        .zip(report.violation_summaries())
        .map(|(c, summary)| ViolationSummary {
            control: c.id.as_str().to_owned(),
            requirement: c.requirement.to_owned(),
            summary,
        })
        .collect();
    ComplianceReport {
        standard: report.standard.as_str().to_owned(),
        generated_at: rfc3339(report.generated_at),
        range: ReportRange {
            seconds: u64::try_from((report.until - report.since).whole_seconds()).unwrap_or(0),
            since: rfc3339(report.since),
            until: rfc3339(report.until),
        },
        wording: WORDING.to_owned(),
        disclaimer: DISCLAIMER.to_owned(),
        score: report.score(),
        score_percent: report.percent(),
        requirements_met: u32::try_from(report.met()).unwrap_or(u32::MAX),
        requirements_total: u32::try_from(report.total()).unwrap_or(u32::MAX),
        controls,
        violations,
        recommendations: report.recommendations(),
    }
}

/// How the page gets its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Styles {
    /// A `<link>` to [`REPORT_CSS_PATH`] on the server (its CSP allows no inline style).
    Linked,
    /// A `<style>` element, for a file written by the CLI and opened without a server.
    Inline,
}

/// Text made safe for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A status as a class name: only core's three, whatever the view holds.
fn status_class(status: &str) -> &'static str {
    use palisade_core::compliance::report::ControlStatus;
    [ControlStatus::Met, ControlStatus::NotMet]
        .into_iter()
        .find(|s| s.as_str() == status)
        .unwrap_or(ControlStatus::NotApplicable)
        .as_str()
}

fn status_label(status: &str) -> &'static str {
    match status {
        "met" => "met",
        "not_met" => "not met",
        _ => "not applicable",
    }
}

/// The printable page of a report. Every text from the report is escaped.
pub fn render_html(report: &ComplianceReport, styles: Styles) -> String {
    let e = |text: &str| escape(text);
    let mut out = String::with_capacity(16 * 1024);
    let style = match styles {
        Styles::Linked => format!(r#"<link rel="stylesheet" href="{REPORT_CSS_PATH}">"#),
        Styles::Inline => format!("<style>\n{REPORT_CSS}</style>"),
    };
    // `write!` to a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{standard}: {wording} — Palisade</title>\n{style}\n\
         </head>\n<body>\n<header>\n<h1>{standard}: {wording}</h1>\n<p class=\"disclaimer\">{disclaimer}</p>\n\
         <dl class=\"summary\">\n<dt>Score</dt><dd><span class=\"score\">{percent}%</span> — {met} of {total} \
         controls met</dd>\n<dt>Generated</dt><dd><time datetime=\"{generated}\">{generated}</time></dd>\n\
         <dt>Audit range</dt><dd>{since} to {until} ({seconds} seconds)</dd>\n</dl>\n</header>\n<main>\n",
        standard = e(&report.standard),
        wording = e(&report.wording),
        disclaimer = e(&report.disclaimer),
        percent = report.score_percent,
        met = report.requirements_met,
        total = report.requirements_total,
        generated = e(&report.generated_at),
        since = e(&report.range.since),
        until = e(&report.range.until),
        seconds = report.range.seconds,
    );
    out.push_str("<section>\n<h2>Controls not met</h2>\n");
    if report.violations.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for v in &report.violations {
            let _ = writeln!(out, "<li>{}</li>", e(&v.summary));
        }
        out.push_str("</ul>\n");
    }
    if !report.recommendations.is_empty() {
        out.push_str("<h2>Recommendations</h2>\n<ol>\n");
        for r in &report.recommendations {
            let _ = writeln!(out, "<li>{}</li>", e(r));
        }
        out.push_str("</ol>\n");
    }
    out.push_str(
        "</section>\n<section>\n<h2>Summary</h2>\n<table>\n<thead><tr><th>Control</th><th>Requirement</th>\
                  <th>Status</th></tr></thead>\n<tbody>\n",
    );
    for c in &report.controls {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            e(&c.title),
            e(&c.requirement),
            status_class(&c.status),
            status_label(&c.status)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n<section>\n<h2>Evidence</h2>\n");
    for c in &report.controls {
        let _ = write!(
            out,
            "<article class=\"control {class}\" id=\"{id}\">\n<h3><span>{title}</span> <span class=\"status\">{label}\
             </span></h3>\n<p class=\"requirement\">{requirement} · <code>{id}</code></p>\n<dl>\n\
             <dt>Measured</dt><dd>{measured}</dd>\n<dt>Expected</dt><dd>{expected}</dd>\n",
            class = status_class(&c.status),
            id = e(&c.id),
            title = e(&c.title),
            label = status_label(&c.status),
            requirement = e(&c.requirement),
            measured = e(&c.evidence.measured),
            expected = e(&c.evidence.expected),
        );
        if let Some(q) = &c.evidence.query {
            let _ = writeln!(out, "<dt>Query</dt><dd>{}: <strong>{}</strong></dd>", e(&q.description), e(&q.result));
        }
        if !c.evidence.config.is_empty() {
            out.push_str("<dt>Configuration</dt><dd>");
            let items: Vec<String> = c
                .evidence
                .config
                .iter()
                .map(|(key, value)| format!("<code>{}</code> = <code>{}</code>", e(key), e(value)))
                .collect();
            out.push_str(&items.join("<br>"));
            out.push_str("</dd>\n");
        }
        if let Some(r) = &c.recommendation {
            let _ = writeln!(out, "<dt>Recommendation</dt><dd>{}</dd>", e(r));
        }
        out.push_str("</dl>\n</article>\n");
    }
    let _ = write!(
        out,
        "</section>\n</main>\n<footer>\n<p>Palisade — {wording}, not a certification.</p>\n</footer>\n</body>\n</html>\n",
        wording = e(&report.wording)
    );
    out
}

/// What the reports need to know about the deployment, from the configuration: the issuer, the
/// trusted proxies, the stores' links (TLS or not, local or not: read from their URLs, which are
/// never copied), where the master key lives, the signing key's schedule, and every setting's
/// value as `describe()` shows it (secrets masked there, and again by core).
pub(crate) fn deployment_facts(config: &Config) -> DeploymentFacts {
    let time = |d: std::time::Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
    let hot = match &config.redis_url {
        Some(url) => store_link(url.expose_secret()),
        None => StoreLink { backend: "durable store".into(), encrypted: None, local: true },
    };
    let master_key = if config.hsm_module.is_some() {
        MasterKeySource::Hsm
    } else if config.master_key.is_some() {
        MasterKeySource::Configured
    } else {
        MasterKeySource::DevelopmentFile
    };
    let mut facts = DeploymentFacts::default();
    facts.issuer = Some(config.issuer.as_str().trim_end_matches('/').to_owned());
    facts.trusted_proxies = config.trusted_proxies.iter().map(ToString::to_string).collect();
    facts.durable = Some(store_link(config.database_url.expose_secret()));
    facts.hot = Some(hot);
    facts.master_key = Some(master_key);
    facts.signing_key_rotation = config.signing_key_rotation.map(time);
    let described = config.describe();
    facts.set_config(described.into_iter().map(|(key, value)| {
        let secret = Setting::from_key(key).is_none_or(Setting::is_secret);
        (key, value, secret)
    }));
    facts
}

/// A store's link from its URL: the backend, TLS or not, local or not. Nothing of the URL is kept.
fn store_link(url: &str) -> StoreLink {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        return StoreLink { backend: "sqlite".into(), encrypted: None, local: true };
    }
    let backend = if lower.starts_with("postgres") { "postgres" } else { "redis" };
    let Ok(parsed) = url::Url::parse(url) else {
        // A Redis Cluster URL lists several hosts and is not one URL: judge by its scheme alone.
        return StoreLink { backend: backend.into(), encrypted: Some(lower.starts_with("rediss")), local: false };
    };
    let query = |name: &str| parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.to_ascii_lowercase());
    let socket = query("host").is_some_and(|h| h.starts_with('/'));
    let local = socket
        || match parsed.host() {
            // A scheme the URL standard does not know (postgres, redis) keeps its host opaque: an
            // address comes back as a domain.
            Some(url::Host::Domain(d)) => {
                let bare = d.trim_start_matches('[').trim_end_matches(']');
                d.is_empty()
                    || d.eq_ignore_ascii_case("localhost")
                    || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => true,
        };
    let encrypted = if backend == "postgres" {
        let mode = query("sslmode").unwrap_or_default();
        matches!(mode.as_str(), "require" | "verify-ca" | "verify-full")
    } else {
        parsed.scheme().starts_with("rediss")
    };
    StoreLink { backend: backend.into(), encrypted: Some(encrypted), local }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ComplianceReport {
        ComplianceReport {
            standard: "GDPR".into(),
            generated_at: "2025-06-01T12:00:00Z".into(),
            range: ReportRange {
                seconds: 86_400,
                since: "2025-05-31T12:00:00Z".into(),
                until: "2025-06-01T12:00:00Z".into(),
            },
            wording: WORDING.into(),
            disclaimer: DISCLAIMER.into(),
            score: 0.5,
            score_percent: 50.0,
            requirements_met: 1,
            requirements_total: 2,
            controls: vec![ControlView {
                id: "admin_mfa".into(),
                title: "MFA <coverage>".into(),
                requirement: "GDPR Art. 32(1)(b)".into(),
                status: "\"><script>alert(1)</script>".into(),
                evidence: EvidenceView {
                    measured: "<img src=x onerror=alert(1)>".into(),
                    expected: "a & b".into(),
                    config: [("issuer".to_owned(), "https://x/'\"".to_owned())].into(),
                    query: Some(EvidenceQueryView { description: "<q>".into(), result: "</dd>".into() }),
                },
                recommendation: Some("<b>do it</b>".into()),
            }],
            violations: vec![ViolationSummary {
                control: "admin_mfa".into(),
                requirement: "x".into(),
                summary: "<script>bad()</script>".into(),
            }],
            recommendations: vec!["<i>r</i>".into()],
        }
    }

    #[test]
    fn the_page_escapes_every_text_and_has_no_script() {
        let html = render_html(&view(), Styles::Linked);
        for raw in ["<script", "<img", "<q>", "</dd>\"", "<b>", "<i>", "'\""] {
            assert!(!html.contains(raw), "{raw} reached the page:\n{html}");
        }
        assert!(html.contains("MFA &lt;coverage&gt;") && html.contains("a &amp; b"));
        assert!(html.contains("&lt;script&gt;bad()&lt;/script&gt;"));
        assert!(html.contains("class=\"control not_applicable\""), "an unknown status is not a class name");
        assert!(html.contains(r#"<link rel="stylesheet" href="/compliance/report.css">"#));
        assert!(!html.contains("<style"), "no inline style under the CSP");
        assert!(html.contains("technical control checks") && !html.to_lowercase().contains("compliant"));
        let inline = render_html(&view(), Styles::Inline);
        assert!(inline.contains("<style>") && !inline.contains("<link"));
    }

    #[test]
    fn store_links_say_tls_and_locality_without_keeping_the_url() {
        let link = |url: &str| {
            let l = store_link(url);
            (l.backend, l.encrypted, l.local)
        };
        assert_eq!(link("sqlite://./palisade-data/palisade.db"), ("sqlite".into(), None, true));
        assert_eq!(link("postgres://u:pw@db.internal/p?sslmode=verify-full"), ("postgres".into(), Some(true), false));
        assert_eq!(link("postgres://u:pw@db.internal/p"), ("postgres".into(), Some(false), false));
        assert_eq!(link("postgresql://u@127.0.0.1:5432/p"), ("postgres".into(), Some(false), true));
        assert_eq!(link("postgres:///p?host=/var/run/postgresql"), ("postgres".into(), Some(false), true));
        assert_eq!(link("rediss://:pw@cache:6380/0"), ("redis".into(), Some(true), false));
        assert_eq!(link("redis://localhost:6379"), ("redis".into(), Some(false), true));
        assert_eq!(link("redis+cluster://a:7001,b:7002"), ("redis".into(), Some(false), false));
    }

    #[test]
    fn the_format_is_the_parameter_else_the_accept_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(ReportFormat::pick(None, &headers).unwrap(), ReportFormat::Json);
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"));
        assert_eq!(ReportFormat::pick(None, &headers).unwrap(), ReportFormat::Html);
        assert_eq!(ReportFormat::pick(Some("JSON"), &headers).unwrap(), ReportFormat::Json);
        assert_eq!(ReportFormat::pick(Some("html"), &HeaderMap::new()).unwrap(), ReportFormat::Html);
        assert!(ReportFormat::pick(Some("pdf"), &headers).is_err());
    }
}
