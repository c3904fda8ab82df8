//! read-api: filled by later issues.
