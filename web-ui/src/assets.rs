//! Embedded static assets.
