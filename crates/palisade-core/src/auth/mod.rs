//! Authentication: registration, password login with lockout and throttling, refresh-token
//! rotation with reuse detection, bearer authentication, logout, password change and sessions.
//!
//! Every failure that matters is audited with its real reason; callers only ever see the uniform
//! answers of [`AuthError`].

mod error;
mod lockout;
mod service;

pub use error::AuthError;
pub use lockout::LoginLimits;
pub use service::{
    AuthParts, AuthService, AuthSettings, LoginOutcome, Principal, RegisterInput, SCOPE_ADMIN, SCOPE_PASSWORD_CHANGE,
    SCOPE_USER, TokenPair,
};
