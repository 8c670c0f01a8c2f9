//! Ferrocount's web face.
