//! Page view models and templates.
