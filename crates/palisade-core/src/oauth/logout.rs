//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the browser's sign-in ends — its
//! Palisade session and the sessions clients hold from it — and the user goes back to a
//! `post_logout_redirect_uri` the client registered (matched exactly), with its `state`.
//!
//! With a valid `id_token_hint` (an ID token of ours, expired or not) the logout happens at once.
//! Without one, anyone could log a user out by a link, so the user confirms on a page first (a
//! form with a single-use token bound to the browser, as the sign-in forms are).

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::authorize::{Authorizer, FlowError, digest_hex, random_token};
use crate::audit::RequestMeta;
use crate::store::HotKey;
use crate::user::UserId;

/// How long the confirmation page waits.
const CONFIRM_TTL: time::Duration = time::Duration::minutes(10);

/// The parameters of a logout request.
#[derive(Debug, Clone, Default)]
pub struct LogoutQuery {
    /// `id_token_hint`.
    pub id_token_hint: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `post_logout_redirect_uri`.
    pub post_logout_redirect_uri: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// A parameter sent more than once, if any.
    pub repeated: Option<String>,
}

/// What the browser is shown or sent next.
#[derive(Debug)]
pub enum LogoutStep {
    /// Ask the user to confirm (a form posting `token`).
    Confirm {
        /// The form's single-use token.
        token: String,
        /// The client that asked, if known.
        client_name: Option<String>,
    },
    /// Signed out: back to the client, or a page saying so.
    SignedOut {
        /// Where to send the browser.
        redirect: Option<String>,
    },
    /// A request that cannot be honoured (shown, never redirected).
    Error {
        /// What went wrong.
        message: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Confirmation {
    browser: String,
    redirect: Option<String>,
}

fn confirm_key(token: &str) -> HotKey {
    HotKey::new(&format!("oauth-logout:{}", digest_hex(token)), "")
}

#[derive(Deserialize)]
struct HintClaims {
    iss: String,
    sub: String,
    aud: String,
}

impl Authorizer {
    /// Starts a logout.
    pub async fn logout(
        &self,
        query: LogoutQuery,
        browser: Option<&SecretString>,
        meta: &RequestMeta,
    ) -> Result<LogoutStep, FlowError> {
        let error = |message: &str| Ok(LogoutStep::Error { message: message.to_owned() });
        if let Some(name) = &query.repeated {
            return error(&format!("The application sent `{name}` more than once."));
        }
        let hint = match query.id_token_hint.as_deref() {
            None => None,
            Some(token) => match self.hint(token) {
                Some(hint) => Some(hint),
                None => return error("The application's id_token_hint is not an ID token of this server."),
            },
        };
        let client_id = match (hint.as_ref().map(|h| h.aud.as_str()), query.client_id.as_deref()) {
            (Some(aud), Some(id)) if aud != id => return error("client_id is not the id_token_hint's audience."),
            (Some(aud), _) => Some(aud.to_owned()),
            (None, id) => id.map(str::to_owned),
        };
        let client = match &client_id {
            Some(id) if id.len() <= 64 => self.clients().find(id).await?,
            _ => None,
        };
        let redirect = match query.post_logout_redirect_uri.as_deref() {
            None => None,
            Some(uri) => {
                let Some(client) = &client else {
                    return error("post_logout_redirect_uri needs the client (id_token_hint or client_id).");
                };
                if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                    return error("The application asked to be sent back to an address it did not register.");
                }
                let mut url = uri.to_owned();
                if let Some(state) = query.state.as_deref().filter(|s| s.len() <= 1024) {
                    let query =
                        url::form_urlencoded::Serializer::new(String::new()).append_pair("state", state).finish();
                    url.push(if uri.contains('?') { '&' } else { '?' });
                    url.push_str(&query);
                }
                Some(url)
            }
        };
        if let Some(hint) = hint {
            let user = UserId::parse(&hint.sub).ok();
            if let Some(browser) = browser {
                self.sign_out(browser, user, meta).await?;
            }
            return Ok(LogoutStep::SignedOut { redirect });
        }
        let Some(browser) = browser else {
            // Not signed in here: nothing to end.
            return Ok(LogoutStep::SignedOut { redirect });
        };
        let token = random_token()?;
        let confirmation = Confirmation { browser: digest_hex(browser.expose_secret()), redirect };
        let bytes = serde_json::to_vec(&confirmation).map_err(|e| FlowError::Internal(e.to_string()))?;
        self.hot().put(&confirm_key(&token), &bytes, CONFIRM_TTL).await?;
        Ok(LogoutStep::Confirm { token, client_name: client.map(|c| c.name) })
    }

    /// The confirmation page's answer: signs the browser out.
    pub async fn confirm_logout(
        &self,
        token: &str,
        browser: Option<&SecretString>,
        meta: &RequestMeta,
    ) -> Result<LogoutStep, FlowError> {
        let expired =
            LogoutStep::Error { message: "This sign-out page has expired or was opened in another browser.".into() };
        let Some(browser) = browser else { return Ok(expired) };
        if token.len() != 43 {
            return Ok(expired);
        }
        let Some(bytes) = self.hot().take(&confirm_key(token)).await? else { return Ok(expired) };
        let confirmation: Confirmation =
            serde_json::from_slice(&bytes).map_err(|e| FlowError::Internal(format!("a logout confirmation: {e}")))?;
        let hash = digest_hex(browser.expose_secret());
        if !crate::crypto::constant_time_eq(hash.as_bytes(), confirmation.browser.as_bytes()) {
            return Ok(expired);
        }
        self.sign_out(browser, None, meta).await?;
        Ok(LogoutStep::SignedOut { redirect: confirmation.redirect })
    }

    /// The `sub` and `aud` of an ID token of ours (signature and issuer checked; it may have expired).
    fn hint(&self, token: &str) -> Option<HintClaims> {
        let payload = self.keys().verify_jws(token, "JWT").ok()?;
        let claims: HintClaims = serde_json::from_slice(&payload).ok()?;
        (claims.iss == self.issuer()).then_some(claims)
    }
}
