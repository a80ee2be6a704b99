//! JWT signing keys: generation, encryption at rest, JWKS.
