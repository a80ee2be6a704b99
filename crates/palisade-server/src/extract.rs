//! Extractors that turn framework rejections into problems and resolve the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, rejection::JsonRejection};
use axum::http::{HeaderMap, StatusCode, request::Parts};
use ipnet::IpNet;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json`, but a bad body is a problem: 400 for malformed JSON or a missing content type,
/// 422 for JSON of the wrong shape, 413 past the body limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => ApiError::unprocessable(e.body_text()).into_response(),
                JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(e.body_text()).into_response(),
                JsonRejection::MissingJsonContentType(_) => {
                    ApiError::bad_request("expected Content-Type: application/json").into_response()
                }
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    let (code, detail) = crate::error::problem_for_status(StatusCode::PAYLOAD_TOO_LARGE);
                    crate::error::problem_response(StatusCode::PAYLOAD_TOO_LARGE, &code, detail)
                }
                other => ApiError::bad_request(other.body_text()).into_response(),
            }),
        }
    }
}

/// An optional JSON body: absent when the request has neither a content type nor a body (`POST`
/// with nothing), otherwise exactly [`ApiJson`].
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let headers = req.headers();
        let empty = headers.get(axum::http::header::CONTENT_TYPE).is_none()
            && headers.get(axum::http::header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0")
            && headers.get(axum::http::header::TRANSFER_ENCODING).is_none();
        if empty {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state).await.map(Some)
    }
}

/// The client's address: the socket peer, or — only when the peer is a trusted proxy — the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// Resolves the client address from the peer and the headers.
    pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Self {
        // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`; compare them as IPv4.
        let peer = peer.to_canonical();
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        if !is_trusted(&peer) {
            return Self(peer);
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
                Ok(ip) => {
                    client = ip;
                    if !is_trusted(&ip) {
                        break;
                    }
                }
                // A hop we cannot read ends the trusted part of the chain: keep the last good address.
                Err(_) => break,
            }
        }
        Self(client)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Ok(*ip);
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| Self(addr.ip()))
            .ok_or_else(|| ApiError::Internal("no peer address on the request".into()))
    }
}

/// The request facts an audit record carries: client address, user agent, request id.
#[derive(Debug, Clone)]
pub struct Meta(pub palisade_core::audit::RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(512).collect::<String>())
        };
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .map(|ip| ip.0)
            .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()));
        Ok(Self(palisade_core::audit::RequestMeta {
            ip: ip.map(|ip| ip.to_string()),
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
            accept_language: header("accept-language"),
        }))
    }
}

/// The text of an `X-API-Key` header; validated by the service the handler calls.
#[derive(Debug)]
pub struct PresentedApiKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PresentedApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(|v| Self(v.trim().to_owned()))
            .ok_or(ApiError::from(palisade_core::api_key::ApiKeyError::Invalid))
    }
}

/// A caller authenticated by `Authorization: Bearer <access token>` (signature, claims and a live
/// session checked) or by `X-API-Key` (hash, expiry, allow-list and rate limits checked). Anything
/// else is 401 with `WWW-Authenticate: Bearer`. Scopes are checked by the service each route calls.
#[derive(Debug, Clone)]
pub struct Authenticated(pub palisade_core::auth::Principal);

impl FromRequestParts<crate::app::AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &crate::app::AppState) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let api_key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned());
        let Meta(meta) = Meta::from_request_parts(parts, state).await.unwrap_or_else(|never| match never {});
        match (bearer, api_key) {
            (Some(token), _) => Ok(Self(state.palisade.auth().authenticate(&token, &meta).await?)),
            (None, Some(key)) => {
                let ip = parts.extensions.get::<ClientIp>().map(|ip| ip.0);
                let valid = state.palisade.api_keys().validate(&key, &[], ip, &meta).await?;
                Ok(Self(palisade_core::auth::Principal::from_api_key(&valid)))
            }
            // No credential at all is refused without an audit record: only a presented credential
            // that fails is a security event (and anonymous traffic cannot flood the chain).
            (None, None) => Err(palisade_core::auth::AuthError::InvalidToken.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(ClientIp::resolve(peer, &headers("1.2.3.4"), &trusted).0, peer);
        assert_eq!(ClientIp::resolve(peer, &headers("1.2.3.4"), &[]).0, peer);
    }

    #[test]
    fn forwarded_for_from_a_trusted_proxy_gives_the_first_untrusted_hop_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        // The client forged the left-most entry; the right-most untrusted one is what our proxy saw.
        let got = ClientIp::resolve(peer, &headers("6.6.6.6, 198.51.100.7, 10.0.0.5"), &trusted);
        assert_eq!(got.0, "198.51.100.7".parse::<IpAddr>().unwrap());
        let v6 = ClientIp::resolve("::1".parse().unwrap(), &headers("2001:db8::1"), &trusted);
        assert_eq!(v6.0, "2001:db8::1".parse::<IpAddr>().unwrap());
        // An IPv4 proxy seen through a dual-stack socket is still trusted.
        let mapped = ClientIp::resolve("::ffff:10.0.0.2".parse().unwrap(), &headers("198.51.100.7"), &trusted);
        assert_eq!(mapped.0, "198.51.100.7".parse::<IpAddr>().unwrap());
        // Garbage stops the walk at the last readable hop.
        let got = ClientIp::resolve(peer, &headers("nonsense"), &trusted);
        assert_eq!(got.0, peer);
    }

    /// Malformed JSON, the wrong shape, a missing content type and an oversized body each become a
    /// problem with the right status, through the same layers the server uses.
    #[tokio::test]
    async fn json_rejections_are_problems() {
        use axum::body::Body;
        use axum::http::Request;
        use tower::ServiceExt as _;

        #[derive(serde::Deserialize)]
        struct Shape {
            #[allow(dead_code)]
            name: String,
        }
        let app = axum::Router::new()
            .route("/echo", axum::routing::post(|ApiJson(_): ApiJson<Shape>| async { "ok" }))
            .layer(axum::middleware::from_fn(crate::middleware::problems))
            .layer(axum::extract::DefaultBodyLimit::max(crate::app::BODY_LIMIT));
        let send = |body: Vec<u8>, json: bool| {
            let mut req = Request::post("/echo").header("x-request-id", "t1");
            if json {
                req = req.header("content-type", "application/json");
            }
            app.clone().oneshot(req.body(Body::from(body)).unwrap())
        };
        let cases = [
            (br#"{"name": "x"}"#.to_vec(), true, 200, None),
            (br#"{"name": "#.to_vec(), true, 400, Some("VALIDATION_ERROR")),
            (br#"{"name": 5}"#.to_vec(), true, 422, Some("VALIDATION_ERROR")),
            (br#"{"name": "x"}"#.to_vec(), false, 400, Some("VALIDATION_ERROR")),
            (vec![b' '; crate::app::BODY_LIMIT + 10], true, 413, Some("PAYLOAD_TOO_LARGE")),
        ];
        for (body, json, status, code) in cases {
            let response = send(body, json).await.unwrap();
            assert_eq!(response.status().as_u16(), status);
            if let Some(code) = code {
                assert_eq!(response.headers()["content-type"], crate::error::PROBLEM_JSON);
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(problem["code"], code);
                assert_eq!(problem["status"], status);
                assert_eq!(problem["request_id"], "t1");
            }
        }
    }
}
