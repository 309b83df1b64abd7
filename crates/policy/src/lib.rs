//! Warden's governance internals: tool requests, policy rules, path scope and argument checks, decisions.
//!
//! (Being built: see the open issues.)
