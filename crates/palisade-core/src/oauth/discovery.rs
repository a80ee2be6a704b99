//! The provider's metadata (OpenID Connect Discovery 1.0, RFC 8414), listing exactly what this
//! server implements: nothing here is advertised that a request would then be refused for.

use serde_json::{Value, json};

use super::id_token::{ACR_MFA, ACR_PASSWORD};
use crate::token::keys::SigningAlgorithm;

/// Algorithms accepted for `private_key_jwt` client assertions.
pub const ASSERTION_ALGORITHMS: [&str; 9] =
    ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// The metadata document for `issuer`, whose tokens are signed with `algorithm`. With a symmetric
/// algorithm (HS256) no ID token can be verified by a client, so nothing of OpenID Connect is
/// listed (and `openid` is refused).
pub fn metadata(issuer: &str, algorithm: SigningAlgorithm) -> Value {
    let endpoint = |path: &str| format!("{issuer}{path}");
    let client_auth = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": endpoint("/oauth2/authorize"),
        "token_endpoint": endpoint("/oauth2/token"),
        "introspection_endpoint": endpoint("/oauth2/introspect"),
        "revocation_endpoint": endpoint("/oauth2/revoke"),
        "jwks_uri": endpoint("/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    });
    if !algorithm.is_symmetric()
        && let Some(object) = document.as_object_mut()
    {
        let oidc = json!({
            "userinfo_endpoint": endpoint("/oauth2/userinfo"),
            "end_session_endpoint": endpoint("/oauth2/logout"),
            "scopes_supported": ["openid", "profile", "email"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [algorithm.as_str()],
            "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
            "claims_supported": [
                "sub", "iss", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash",
                "preferred_username", "email"
            ],
        });
        if let Value::Object(extra) = oidc {
            object.extend(extra);
        }
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openid_connect_is_listed_only_with_an_asymmetric_key() {
        let eddsa = metadata("https://id.example", SigningAlgorithm::EdDSA);
        assert_eq!(eddsa["userinfo_endpoint"], "https://id.example/oauth2/userinfo");
        assert_eq!(eddsa["id_token_signing_alg_values_supported"], json!(["EdDSA"]));
        assert_eq!(eddsa["code_challenge_methods_supported"], json!(["S256"]));
        let hs = metadata("https://id.example", SigningAlgorithm::HS256);
        assert!(hs.get("userinfo_endpoint").is_none());
        assert!(hs.get("id_token_signing_alg_values_supported").is_none());
        assert_eq!(hs["token_endpoint"], "https://id.example/oauth2/token");
    }
}
