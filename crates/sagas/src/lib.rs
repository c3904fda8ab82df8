//! sagas: filled by later issues.
