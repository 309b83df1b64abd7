//! The one door into Warden's governance: a small, named re-export surface over warden-policy.
//!
//! (Being built: see the open issues.)
