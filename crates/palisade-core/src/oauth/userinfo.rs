//! The UserInfo endpoint (OpenID Connect Core §5.3): claims about the user of an access token
//! issued to a client with `openid`, as its scopes allow (`profile`: `preferred_username`;
//! `email`: `email`). Palisade keeps no verified flag for addresses, so `email_verified` is not
//! claimed.

use serde_json::{Map, Value};

use super::token::TokenEndpoint;
use crate::auth::AuthError;

/// Why userinfo refused a token (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    /// Missing, malformed, expired, revoked, or not a token of a user's grant: `invalid_token`.
    #[error("invalid_token")]
    InvalidToken,
    /// The token does not have `openid`: `insufficient_scope`.
    #[error("insufficient_scope")]
    InsufficientScope,
    /// A store failed.
    #[error(transparent)]
    Server(#[from] AuthError),
}

impl TokenEndpoint {
    /// The claims about the user of `bearer`.
    pub async fn userinfo(&self, bearer: &str) -> Result<Map<String, Value>, UserinfoError> {
        let Some(claims) = self.auth().check_grant_token(bearer).await? else {
            return Err(UserinfoError::InvalidToken);
        };
        let client = claims.client_id.as_deref().unwrap_or_default();
        if self.clients().find(client).await.map_err(AuthError::from)?.is_none() {
            // The client was deleted: its tokens ended with it.
            return Err(UserinfoError::InvalidToken);
        }
        if !claims.has_scope("openid") {
            return Err(UserinfoError::InsufficientScope);
        }
        let user = crate::user::UserId::parse(&claims.sub).map_err(|_| UserinfoError::InvalidToken)?;
        let Some(user) = self.auth().user_by_id(user).await?.filter(|u| !u.locked) else {
            return Err(UserinfoError::InvalidToken);
        };
        let mut out = Map::new();
        out.insert("sub".into(), Value::from(user.id.to_string()));
        if claims.has_scope("profile") {
            out.insert("preferred_username".into(), Value::from(user.username.as_str()));
        }
        if claims.has_scope("email")
            && let Some(email) = &user.email
        {
            out.insert("email".into(), Value::from(email.as_str()));
        }
        Ok(out)
    }
}
