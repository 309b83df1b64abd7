//! End-to-end tests for Warden live in `tests/tests/`; this library holds their shared helpers.
