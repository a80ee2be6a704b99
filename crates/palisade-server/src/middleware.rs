//! Cross-cutting layers: client address, metrics, and problem bodies for every error answer.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use palisade_types::problem::Problem;

use crate::error::{PROBLEM_JSON, problem_for_status, problem_response};
use crate::extract::ClientIp;

/// Resolves the client address once per request and stores it as a [`ClientIp`] extension.
pub(crate) async fn client_ip(State(trusted): State<Arc<Vec<IpNet>>>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().copied() {
        let ip = ClientIp::resolve(peer.ip(), req.headers(), &trusted);
        req.extensions_mut().insert(ip);
    }
    next.run(req).await
}

/// Refuses every request from an address an automatic response blocked (403 `FORBIDDEN_IP`, with
/// `Retry-After` until the block lapses), before any handler runs. The probes (`/health`, `/ready`,
/// `/metrics`) stay open: they come from the infrastructure. The check reads memory only.
pub(crate) async fn refuse_blocked(
    State(blocks): State<Arc<palisade_core::monitoring::respond::IpBlocks>>,
    req: Request,
    next: Next,
) -> Response {
    let probe = matches!(req.uri().path(), "/health" | "/ready" | "/metrics");
    let left = req.extensions().get::<ClientIp>().and_then(|ip| blocks.blocked_for(ip.0));
    match left {
        Some(left) if !probe => {
            let mut response = problem_response(
                StatusCode::FORBIDDEN,
                "FORBIDDEN_IP",
                "requests from this address are blocked for a while after suspicious activity".into(),
            );
            let seconds = left.whole_seconds().max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        _ => next.run(req).await,
    }
}

/// Counts requests and records their latency by route template (never the raw path, which would let
/// a scanner explode the label set), method and status.
pub(crate) async fn metrics(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("palisade_http_requests_total", &labels).increment(1);
    metrics::histogram!("palisade_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

/// Makes every error answer a problem: framework answers (404, 405, 413, 503 on timeout …), which
/// come as plain text or empty, get a problem body, and every problem gets the request id.
pub(crate) async fn problems(req: Request, next: Next) -> Response {
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes().to_vec());
    let is_problem = content_type.as_deref() == Some(PROBLEM_JSON.as_bytes());
    // A JSON body that is not a problem is a documented answer (`/ready`'s 503 report, the OAuth
    // endpoints' RFC 6749 errors): keep it. So is an HTML page (the sign-in flow's error pages, which
    // are for people and carry their own security headers).
    if content_type.as_deref() == Some(b"application/json".as_slice())
        || content_type.as_deref().is_some_and(|c| c.starts_with(b"text/html"))
    {
        return response;
    }
    let (mut parts, body) = if is_problem {
        response.into_parts()
    } else {
        let (code, detail) = problem_for_status(status);
        let mut fresh = problem_response(status, &code, detail);
        // Keep headers that matter to the client: Allow on 405, Retry-After, a Bearer challenge
        // (RFC 6750 §3: userinfo's `WWW-Authenticate`), and what may be cached.
        for name in
            [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE, header::CACHE_CONTROL, header::PRAGMA]
        {
            if let Some(value) = response.headers().get(&name) {
                fresh.headers_mut().insert(name, value.clone());
            }
        }
        fresh.into_parts()
    };
    let Some(request_id) = request_id else {
        return Response::from_parts(parts, body);
    };
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return internal_problem();
    };
    let body = match serde_json::from_slice::<Problem>(&bytes) {
        Ok(mut problem) => {
            problem.request_id = Some(request_id);
            serde_json::to_vec(&problem).map_or(Body::from(bytes), Body::from)
        }
        Err(_) => Body::from(bytes),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, body)
}

fn internal_problem() -> Response {
    let (code, detail) = problem_for_status(StatusCode::INTERNAL_SERVER_ERROR);
    problem_response(StatusCode::INTERNAL_SERVER_ERROR, &code, detail)
}
