//! Authentication: registration, password login with lockout and throttling, refresh-token
//! rotation with reuse detection, bearer authentication, logout, password change and sessions.
//!
//! Every failure that matters is audited with its real reason; callers only ever see the uniform
//! answers of [`AuthError`].

mod account;
mod approval;
mod devices;
mod error;
pub(crate) mod grants;
pub(crate) mod lockout;
mod login;
mod service;

pub use account::FactorRemovalProof;
pub use error::AuthError;
pub use lockout::LoginLimits;
pub use login::LoginOptions;
pub use service::{
    ApprovalPending, AuthParts, AuthService, AuthSettings, LoginOutcome, MfaPending, MfaStep, Principal, RegisterInput,
    SCOPE_ADMIN, SCOPE_MFA_ENROLL, SCOPE_PASSWORD_CHANGE, SCOPE_USER, TokenPair,
};
