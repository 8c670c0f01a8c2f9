//! Page tests (HTML over loopback): filled by the pages work.
