//! projections: filled by later issues.
