//! write-api: filled by later issues.
