//! Pages the server serves itself: the passkey page (`/passkeys`), the security dashboard
//! (`/dashboard`) and the device-approval page, with their scripts and style sheets,
//! compiled into the binary. A strict Content-Security-Policy: only this origin's script, style and
//! API, no inline code, no framing.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const SIGNIN_JS: &str = include_str!("../pages/signin.js");
const PASSKEYS_HTML: &str = include_str!("../pages/passkeys.html");
const PASSKEYS_JS: &str = include_str!("../pages/passkeys.js");
const PASSKEYS_CSS: &str = include_str!("../pages/passkeys.css");
const DASHBOARD_HTML: &str = include_str!("../pages/dashboard.html");
const DASHBOARD_JS: &str = include_str!("../pages/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../pages/dashboard.css");
const APPROVE_HTML: &str = include_str!("../pages/approve.html");
const APPROVE_JS: &str = include_str!("../pages/approve.js");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn page(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The sign-in script both pages load before their own: the password form, the second step
/// (a code, or a passkey) and signing out, with the API helper they share.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/signin.js", tag = "pages", responses((status = 200, description = "the script", content_type = "text/javascript")))]
pub(crate) async fn signin_js() -> Response {
    page(SIGNIN_JS, "text/javascript; charset=utf-8")
}

/// The passkey page: sign in (password and second step, or a passkey alone), add and remove
/// passkeys. It works on the configured WebAuthn origin (`PALISADE_WEBAUTHN_ORIGIN`).
///
/// **Permissions** - none (the page signs in through the API)
#[utoipa::path(get, path = "/passkeys", tag = "pages", responses((status = 200, description = "the page", content_type = "text/html")))]
pub(crate) async fn passkeys() -> Response {
    page(PASSKEYS_HTML, "text/html; charset=utf-8")
}

/// The passkey page's script.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/passkeys.js", tag = "pages", responses((status = 200, description = "the script", content_type = "text/javascript")))]
pub(crate) async fn passkeys_js() -> Response {
    page(PASSKEYS_JS, "text/javascript; charset=utf-8")
}

/// The passkey page's style sheet.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/passkeys.css", tag = "pages", responses((status = 200, description = "the style sheet", content_type = "text/css")))]
pub(crate) async fn passkeys_css() -> Response {
    page(PASSKEYS_CSS, "text/css; charset=utf-8")
}

/// The security dashboard for administrators: sign in (password and second step), then the last
/// range's metrics, threats, incidents and charts from `GET /monitoring/dashboard`, refreshed on its
/// own. Charts are drawn as SVG by the page's own script: nothing is fetched from elsewhere.
///
/// **Permissions** - none (the page signs in through the API; the data needs `admin` or `monitoring:read`)
#[utoipa::path(get, path = "/dashboard", tag = "pages", responses((status = 200, description = "the page", content_type = "text/html")))]
pub(crate) async fn dashboard() -> Response {
    page(DASHBOARD_HTML, "text/html; charset=utf-8")
}

/// The dashboard's script.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/dashboard.js", tag = "pages", responses((status = 200, description = "the script", content_type = "text/javascript")))]
pub(crate) async fn dashboard_js() -> Response {
    page(DASHBOARD_JS, "text/javascript; charset=utf-8")
}

/// The dashboard's style sheet.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/dashboard.css", tag = "pages", responses((status = 200, description = "the style sheet", content_type = "text/css")))]
pub(crate) async fn dashboard_css() -> Response {
    page(DASHBOARD_CSS, "text/css; charset=utf-8")
}

/// The page a mailed device-approval link opens: it shows one button, which approves the device
/// (the token stays in the URL fragment, which browsers never send, and a link scanner that
/// fetches the page approves nothing).
///
/// **Permissions** - none (the button posts the link's token)
#[utoipa::path(get, path = "/devices/approve", tag = "pages", responses((status = 200, description = "the page", content_type = "text/html")))]
pub(crate) async fn approve() -> Response {
    page(APPROVE_HTML, "text/html; charset=utf-8")
}

/// The approval page's script.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/devices/approve.js", tag = "pages", responses((status = 200, description = "the script", content_type = "text/javascript")))]
pub(crate) async fn approve_js() -> Response {
    page(APPROVE_JS, "text/javascript; charset=utf-8")
}
