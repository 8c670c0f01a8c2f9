//! Ferrocount's science core.
