//! The browser side of the OAuth provider: `/oauth2/authorize` and its sign-in, second-factor,
//! device-approval and consent forms, and `/oauth2/logout`. Server-rendered pages, no script
//! except the form-post response's one-line auto-submit; every value written into a page is
//! escaped. The steps themselves are decided in `palisade_core::oauth::authorize`.
//!
//! The browser cookie (`palisade_browser`) is `HttpOnly`, `SameSite=Lax`, limited to `/oauth2`, and
//! `Secure` when the issuer is `https`. Forms carry the pending request's id, which is bound to that
//! cookie: the CSRF token.
//!
//! The pages' Content-Security-Policy has no `form-action`: the sign-in and consent forms end in a
//! redirect to the client, which a `form-action 'self'` would block in browsers that apply it to
//! redirects. Nothing on these pages comes from outside unescaped, and no script runs but ours.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_core::oauth::authorize::AuthorizationResponse;
use palisade_core::oauth::{AuthorizeQuery, FlowError, LogoutQuery, LogoutStep, ResponseMode, Step, StepOut};
use secrecy::{ExposeSecret as _, SecretString};

use super::reports::escape;
use crate::app::AppState;
use crate::extract::Meta;

/// The browser cookie's name.
const COOKIE: &str = "palisade_browser";
/// Largest form or query accepted.
const MAX_FORM: usize = 16 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";
const PAGES_CSS: &str = include_str!("../pages/oauth.css");
const FORM_POST_JS: &str = include_str!("../pages/form_post.js");

/// The browser cookie's value, if the request carries one of the right shape.
fn browser(headers: &HeaderMap) -> Option<SecretString> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == COOKIE && value.len() == 43).then(|| SecretString::from(value.to_owned()))
    })
}

/// Parameters of a query or form, each at most once; the first repeated name is reported.
fn parameters(raw: &[u8]) -> (std::collections::HashMap<String, String>, Option<String>) {
    let mut map = std::collections::HashMap::new();
    let mut repeated = None;
    for (name, value) in url::form_urlencoded::parse(raw) {
        if map.contains_key(name.as_ref()) {
            repeated.get_or_insert_with(|| name.chars().take(40).collect());
            continue;
        }
        map.insert(name.into_owned(), value.into_owned());
    }
    map.retain(|_, v| !v.is_empty());
    (map, repeated)
}

fn authorize_query(raw: &[u8]) -> AuthorizeQuery {
    let (mut p, repeated) = parameters(raw);
    AuthorizeQuery {
        client_id: p.remove("client_id"),
        redirect_uri: p.remove("redirect_uri"),
        response_type: p.remove("response_type"),
        response_mode: p.remove("response_mode"),
        scope: p.remove("scope"),
        state: p.remove("state"),
        nonce: p.remove("nonce"),
        code_challenge: p.remove("code_challenge"),
        code_challenge_method: p.remove("code_challenge_method"),
        prompt: p.remove("prompt"),
        max_age: p.remove("max_age"),
        request: p.remove("request"),
        request_uri: p.remove("request_uri"),
        repeated,
    }
}

/// A page with the headers every page of this flow has.
fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{}</title><link rel=\"stylesheet\" \
         href=\"/oauth2/pages.css\"></head><body><main>{body}</main></body></html>\n",
        escape(title)
    );
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn error_page(status: StatusCode, message: &str) -> Response {
    html(status, "Sign-in error", &format!("<h1>Something went wrong</h1><p class=\"error\">{}</p>", escape(message)))
}

fn flow_failure(error: &FlowError) -> Response {
    match error {
        FlowError::Unavailable(cause) => {
            tracing::warn!(%cause, "failing closed: a store the sign-in needs is unavailable");
            error_page(StatusCode::SERVICE_UNAVAILABLE, "Signing in is unavailable right now. Try again in a moment.")
        }
        FlowError::Internal(cause) => {
            tracing::error!(%cause, "the authorization flow failed");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, "The server could not go on. Try again later.")
        }
    }
}

fn hidden(name: &str, value: &str) -> String {
    format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value))
}

fn notices(notice: Option<&str>, error: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(n) = notice {
        out.push_str(&format!("<p class=\"notice\" role=\"status\">{}</p>", escape(n)));
    }
    if let Some(e) = error {
        out.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)));
    }
    out
}

/// What a scope means, for the consent page.
fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are (your account id)".into(),
        "profile" => "See your username".into(),
        "email" => "See your e-mail address".into(),
        "offline_access" => "Keep access while you are away".into(),
        other => format!("Use “{}”", other),
    }
}

fn render_step(out: StepOut, secure: bool) -> Response {
    let mut response = match out.step {
        Step::Error { message } => error_page(StatusCode::BAD_REQUEST, &message),
        Step::Busy { retry_after } => {
            let mut page = error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins were started from your network. Try again in a few minutes.",
            );
            page.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.whole_seconds().max(1)));
            page
        }
        Step::Respond(answer) => respond(&answer),
        Step::Login { request, client_name, error } => html(
            StatusCode::OK,
            "Sign in",
            &format!(
                "<h1>Sign in</h1><p>to continue to <strong>{}</strong></p>{}<form method=\"post\" \
                 action=\"/oauth2/authorize/login\">{}<label>Username <input name=\"username\" \
                 autocomplete=\"username\" required autofocus></label><label>Password <input type=\"password\" \
                 name=\"password\" autocomplete=\"current-password\" required></label><button \
                 type=\"submit\">Sign in</button></form>",
                escape(&client_name),
                notices(None, error.as_deref()),
                hidden("request", &request)
            ),
        ),
        Step::SecondFactor { request, client_name, mfa_token, methods, notice, error } => {
            let mut options = String::new();
            let mut senders = String::new();
            for method in &methods {
                let (value, label) = match method.as_str() {
                    "totp" => ("totp", "Authenticator app"),
                    "backup_code" => ("backup_code", "Backup code"),
                    "sms" => ("sms", "Code sent by SMS"),
                    "email" => ("email", "Code sent by e-mail"),
                    _ => continue,
                };
                options.push_str(&format!("<option value=\"{value}\">{label}</option>"));
                if matches!(value, "sms" | "email") {
                    senders.push_str(&format!(
                        "<form method=\"post\" action=\"/oauth2/authorize/mfa\" class=\"inline\">{}{}{}<button \
                         type=\"submit\" name=\"action\" value=\"send\" class=\"secondary\">Send a code by {}</button></form>",
                        hidden("request", &request),
                        hidden("mfa_token", mfa_token.expose_secret()),
                        hidden("method", value),
                        if value == "sms" { "SMS" } else { "e-mail" }
                    ));
                }
            }
            html(
                StatusCode::OK,
                "Second step",
                &format!(
                    "<h1>Confirm it is you</h1><p>to continue to <strong>{}</strong></p>{}<form method=\"post\" \
                     action=\"/oauth2/authorize/mfa\">{}{}<label>Method <select name=\"method\">{options}</select></label>\
                     <label>Code <input name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required \
                     autofocus></label><button type=\"submit\" name=\"action\" value=\"verify\">Continue</button></form>{senders}",
                    escape(&client_name),
                    notices(notice.as_deref(), error.as_deref()),
                    hidden("request", &request),
                    hidden("mfa_token", mfa_token.expose_secret()),
                ),
            )
        }
        Step::Approval { request, client_name, approval_token, notice } => html(
            StatusCode::OK,
            "Approve this device",
            &format!(
                "<h1>Approve this device</h1><p>to continue to <strong>{}</strong>: this device is new. An e-mail \
                 was sent to you with a link to approve it. Once approved, continue here.</p>{}<form method=\"post\" \
                 action=\"/oauth2/authorize/approval\">{}{}<button type=\"submit\">Continue</button></form>",
                escape(&client_name),
                notices(notice.as_deref(), None),
                hidden("request", &request),
                hidden("approval_token", approval_token.expose_secret()),
            ),
        ),
        Step::Consent { request, client_name, scopes } => {
            let items: String =
                scopes.iter().map(|s| format!("<li>{}</li>", escape(&describe_scope(s)))).collect::<Vec<_>>().join("");
            html(
                StatusCode::OK,
                "Allow access",
                &format!(
                    "<h1>Allow access?</h1><p><strong>{}</strong> asks to:</p><ul class=\"scopes\">{items}</ul>\
                     <form method=\"post\" action=\"/oauth2/authorize/consent\">{}<button type=\"submit\" \
                     name=\"decision\" value=\"allow\">Allow</button><button type=\"submit\" name=\"decision\" \
                     value=\"deny\" class=\"secondary\">Deny</button></form><p class=\"small\">You can withdraw this \
                     later from your account's authorized applications.</p>",
                    escape(&client_name),
                    hidden("request", &request),
                ),
            )
        }
    };
    if let Some(browser) = out.browser {
        set_cookie(&mut response, browser.expose_secret(), secure);
    }
    response
}

fn set_cookie(response: &mut Response, value: &str, secure: bool) {
    let cookie =
        format!("{COOKIE}={value}; Path=/oauth2; HttpOnly; SameSite=Lax{}", if secure { "; Secure" } else { "" });
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn clear_cookie(response: &mut Response, secure: bool) {
    let cookie =
        format!("{COOKIE}=; Path=/oauth2; HttpOnly; SameSite=Lax; Max-Age=0{}", if secure { "; Secure" } else { "" });
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The answer to the client: a redirect (query) or an auto-submitted form (form_post).
fn respond(answer: &AuthorizationResponse) -> Response {
    match answer.mode {
        ResponseMode::Query => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&answer.location()) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        ResponseMode::FormPost => {
            let fields: String = answer.params.iter().map(|(n, v)| hidden(n, v)).collect();
            let body = format!(
                "<form method=\"post\" action=\"{}\" id=\"response\">{fields}<noscript><p>Your browser does not run \
                 scripts: continue by hand.</p></noscript><button type=\"submit\">Continue</button></form>\
                 <script src=\"/oauth2/form_post.js\"></script>",
                escape(&answer.redirect_uri)
            );
            html(StatusCode::OK, "Continue", &body)
        }
    }
}

fn secure(state: &AppState) -> bool {
    state.palisade.token_endpoint().url().starts_with("https://")
}

fn read_form(headers: &HeaderMap, body: &[u8]) -> Option<std::collections::HashMap<String, String>> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type || body.len() > MAX_FORM {
        return None;
    }
    let (form, repeated) = parameters(body);
    repeated.is_none().then_some(form)
}

/// The authorization endpoint (RFC 6749 §3.1, OpenID Connect Core §3.1.2): the authorization-code
/// flow with PKCE S256. Errors before the client and redirect URI are known good are shown, never
/// redirected; later ones go back to the client with `state` and `iss` (RFC 9207).
///
/// **Permissions** - none (a browser)
#[utoipa::path(get, path = "/oauth2/authorize", tag = "oauth2", params(
    ("client_id" = String, Query), ("redirect_uri" = Option<String>, Query), ("response_type" = String, Query, description = "code"),
    ("scope" = String, Query), ("state" = Option<String>, Query), ("nonce" = Option<String>, Query),
    ("code_challenge" = Option<String>, Query), ("code_challenge_method" = Option<String>, Query, description = "S256"),
    ("response_mode" = Option<String>, Query, description = "query or form_post"), ("prompt" = Option<String>, Query, description = "none, login, consent"),
    ("max_age" = Option<u32>, Query),
), responses(
    (status = 200, description = "the sign-in or consent page, or the form_post answer", content_type = "text/html"),
    (status = 303, description = "back to the client's redirect URI with `code` or `error`, `state`, `iss`"),
    (status = 400, description = "an error page (unknown client, unregistered redirect URI)", content_type = "text/html"),
    (status = 429, description = "too many sign-ins started from this address (oauth2_pending_per_ip); Retry-After says when to try again", content_type = "text/html"),
    (status = 503, description = "a store is unavailable", content_type = "text/html"),
))]
pub(crate) async fn authorize(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if query.len() > MAX_FORM {
        return error_page(StatusCode::BAD_REQUEST, "The request is too large.");
    }
    run_authorize(&state, &meta, &headers, authorize_query(query.as_bytes())).await
}

/// The authorization endpoint by POST (OpenID Connect Core §3.1.2.1): the same parameters as a form.
///
/// **Permissions** - none (a browser)
#[utoipa::path(post, path = "/oauth2/authorize", tag = "oauth2", request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "the parameters of GET /oauth2/authorize"), responses(
    (status = 200, description = "the sign-in or consent page", content_type = "text/html"),
    (status = 303, description = "back to the client"),
    (status = 400, description = "an error page", content_type = "text/html"),
    (status = 429, description = "too many sign-ins started from this address; Retry-After says when to try again", content_type = "text/html"),
))]
pub(crate) async fn authorize_post(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.len() > MAX_FORM {
        return error_page(StatusCode::BAD_REQUEST, "The request is too large.");
    }
    run_authorize(&state, &meta, &headers, authorize_query(&body)).await
}

async fn run_authorize(
    state: &AppState,
    meta: &palisade_core::audit::RequestMeta,
    headers: &HeaderMap,
    query: AuthorizeQuery,
) -> Response {
    let browser = browser(headers);
    match state.palisade.authorizer().authorize(query, browser.as_ref(), meta).await {
        Ok(out) => render_step(out, secure(state)),
        Err(e) => flow_failure(&e),
    }
}

fn unreadable_form() -> Response {
    error_page(StatusCode::BAD_REQUEST, "The form could not be read.")
}

/// The sign-in form's password step.
///
/// **Permissions** - none (the browser of a pending request)
#[utoipa::path(post, path = "/oauth2/authorize/login", tag = "oauth2", request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "request, username, password"), responses(
    (status = 200, description = "the next step's page", content_type = "text/html"),
    (status = 303, description = "back to the client"),
    (status = 400, description = "an expired or foreign request", content_type = "text/html"),
))]
pub(crate) async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(mut form) = read_form(&headers, &body) else { return unreadable_form() };
    let request = form.remove("request").unwrap_or_default();
    let username = form.remove("username").unwrap_or_default();
    let password = SecretString::from(form.remove("password").unwrap_or_default());
    let browser = browser(&headers);
    match state.palisade.authorizer().login(&request, browser.as_ref(), &username, password, &meta).await {
        Ok(out) => render_step(out, secure(&state)),
        Err(e) => flow_failure(&e),
    }
}

/// The sign-in form's second step: verify a code, or send one (`action=send`, SMS or e-mail).
///
/// **Permissions** - none (the browser of a pending request)
#[utoipa::path(post, path = "/oauth2/authorize/mfa", tag = "oauth2", request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "request, mfa_token, method, code, action=verify|send"), responses(
    (status = 200, description = "the next step's page", content_type = "text/html"),
    (status = 303, description = "back to the client"),
    (status = 400, description = "an expired or foreign request", content_type = "text/html"),
))]
pub(crate) async fn second_factor(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(mut form) = read_form(&headers, &body) else { return unreadable_form() };
    let request = form.remove("request").unwrap_or_default();
    let token = SecretString::from(form.remove("mfa_token").unwrap_or_default());
    let method = form.remove("method").unwrap_or_default();
    let browser = browser(&headers);
    let authorizer = state.palisade.authorizer();
    let outcome = if form.get("action").map(String::as_str) == Some("send") {
        authorizer.send_code(&request, browser.as_ref(), token, &method, &meta).await
    } else {
        let code = form.remove("code").unwrap_or_default();
        authorizer.second_factor(&request, browser.as_ref(), token, &method, &code, &meta).await
    };
    match outcome {
        Ok(out) => render_step(out, secure(&state)),
        Err(e) => flow_failure(&e),
    }
}

/// The device-approval wait: continue once the device is approved.
///
/// **Permissions** - none (the browser of a pending request)
#[utoipa::path(post, path = "/oauth2/authorize/approval", tag = "oauth2", request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "request, approval_token"), responses(
    (status = 200, description = "still waiting, or the next step", content_type = "text/html"),
    (status = 303, description = "back to the client"),
))]
pub(crate) async fn approval(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(mut form) = read_form(&headers, &body) else { return unreadable_form() };
    let request = form.remove("request").unwrap_or_default();
    let token = SecretString::from(form.remove("approval_token").unwrap_or_default());
    let browser = browser(&headers);
    match state.palisade.authorizer().poll_approval(&request, browser.as_ref(), token, &meta).await {
        Ok(out) => render_step(out, secure(&state)),
        Err(e) => flow_failure(&e),
    }
}

/// The consent form's answer (`decision=allow|deny`).
///
/// **Permissions** - none (the signed-in browser of a pending request)
#[utoipa::path(post, path = "/oauth2/authorize/consent", tag = "oauth2", request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "request, decision=allow|deny"), responses(
    (status = 303, description = "back to the client with a code, or access_denied"),
    (status = 400, description = "an expired or foreign request", content_type = "text/html"),
))]
pub(crate) async fn consent(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(mut form) = read_form(&headers, &body) else { return unreadable_form() };
    let request = form.remove("request").unwrap_or_default();
    let allow = match form.get("decision").map(String::as_str) {
        Some("allow") => true,
        Some("deny") => false,
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    };
    let browser = browser(&headers);
    match state.palisade.authorizer().consent(&request, browser.as_ref(), allow, &meta).await {
        Ok(out) => render_step(out, secure(&state)),
        Err(e) => flow_failure(&e),
    }
}

fn logout_query(raw: &[u8]) -> LogoutQuery {
    let (mut p, repeated) = parameters(raw);
    LogoutQuery {
        id_token_hint: p.remove("id_token_hint"),
        client_id: p.remove("client_id"),
        post_logout_redirect_uri: p.remove("post_logout_redirect_uri"),
        state: p.remove("state"),
        repeated,
    }
}

fn render_logout(step: LogoutStep, secure: bool) -> Response {
    match step {
        LogoutStep::Error { message } => error_page(StatusCode::BAD_REQUEST, &message),
        LogoutStep::Confirm { token, client_name } => {
            let from = client_name.map(|n| format!(" (asked by <strong>{}</strong>)", escape(&n))).unwrap_or_default();
            html(
                StatusCode::OK,
                "Sign out",
                &format!(
                    "<h1>Sign out?</h1><p>Sign out of this browser{from}.</p><form method=\"post\" \
                     action=\"/oauth2/logout\">{}<button type=\"submit\">Sign out</button></form>",
                    hidden("confirm", &token)
                ),
            )
        }
        LogoutStep::SignedOut { redirect } => {
            let mut response = match redirect {
                Some(url) => {
                    let mut response = StatusCode::SEE_OTHER.into_response();
                    if let Ok(location) = HeaderValue::from_str(&url) {
                        response.headers_mut().insert(header::LOCATION, location);
                    }
                    response
                }
                None => html(StatusCode::OK, "Signed out", "<h1>Signed out</h1><p>You are signed out.</p>"),
            };
            clear_cookie(&mut response, secure);
            response
        }
    }
}

/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). With a valid `id_token_hint` the
/// browser is signed out at once; without, the user confirms first. `post_logout_redirect_uri` must
/// be registered for the client (exact match).
///
/// **Permissions** - none (a browser)
#[utoipa::path(get, path = "/oauth2/logout", tag = "oauth2", params(
    ("id_token_hint" = Option<String>, Query), ("client_id" = Option<String>, Query),
    ("post_logout_redirect_uri" = Option<String>, Query), ("state" = Option<String>, Query),
), responses(
    (status = 200, description = "the confirmation page, or signed out", content_type = "text/html"),
    (status = 303, description = "signed out, back to the client"),
    (status = 400, description = "an invalid hint or unregistered redirect", content_type = "text/html"),
))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if query.len() > MAX_FORM {
        return error_page(StatusCode::BAD_REQUEST, "The request is too large.");
    }
    let browser = browser(&headers);
    match state.palisade.authorizer().logout(logout_query(query.as_bytes()), browser.as_ref(), &meta).await {
        Ok(step) => render_logout(step, secure(&state)),
        Err(e) => flow_failure(&e),
    }
}

/// RP-initiated logout by POST: the logout parameters as a form, or the confirmation page's answer
/// (`confirm`).
///
/// **Permissions** - none (a browser)
#[utoipa::path(post, path = "/oauth2/logout", tag = "oauth2", request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "confirm, or the parameters of GET /oauth2/logout"), responses(
    (status = 200, description = "signed out, or the confirmation page", content_type = "text/html"),
    (status = 303, description = "signed out, back to the client"),
    (status = 400, description = "an expired confirmation or invalid request", content_type = "text/html"),
))]
pub(crate) async fn logout_post(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(mut form) = read_form(&headers, &body) else { return unreadable_form() };
    let browser = browser(&headers);
    let authorizer = state.palisade.authorizer();
    let outcome = match form.remove("confirm") {
        Some(token) => authorizer.confirm_logout(&token, browser.as_ref(), &meta).await,
        None => authorizer.logout(logout_query(&body), browser.as_ref(), &meta).await,
    };
    match outcome {
        Ok(step) => render_logout(step, secure(&state)),
        Err(e) => flow_failure(&e),
    }
}

/// The style sheet of the sign-in pages.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/oauth2/pages.css", tag = "pages", responses((status = 200, description = "the style sheet", content_type = "text/css")))]
pub(crate) async fn pages_css() -> Response {
    asset(PAGES_CSS, "text/css; charset=utf-8")
}

/// The form-post response's auto-submit.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/oauth2/form_post.js", tag = "pages", responses((status = 200, description = "the script", content_type = "text/javascript")))]
pub(crate) async fn form_post_js() -> Response {
    asset(FORM_POST_JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_reported() {
        let query = authorize_query(b"client_id=a&client_id=b&scope=openid");
        assert_eq!(query.repeated.as_deref(), Some("client_id"));
        assert_eq!(query.client_id.as_deref(), Some("a"));
        assert_eq!(query.scope.as_deref(), Some("openid"));
    }

    #[test]
    fn only_the_browser_cookie_of_the_right_shape_is_read() {
        let mut headers = HeaderMap::new();
        let value = "a".repeat(43);
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("x=1; {COOKIE}={value}; y=2")).unwrap());
        assert_eq!(browser(&headers).unwrap().expose_secret(), value);
        headers.insert(header::COOKIE, HeaderValue::from_static("palisade_browser=short"));
        assert!(browser(&headers).is_none());
    }
}
