//! Password hashing (argon2id) and the strength rule.
