//! Pure functions from test results and history to a failure class and a retry context.
//!
//! (Being built: see the open issues.)
