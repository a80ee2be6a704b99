//! Access tokens: issuing and verifying JWTs.
