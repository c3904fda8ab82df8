//! The pure booking domain (filled by the foundation issue).
