//! Passwords: the policy, and hashing with argon2id on a bounded blocking pool.
