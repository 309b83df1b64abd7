//! Orchestrates a verification: policy, governed run, flake reruns, classification, retry context, budget and evidence ledger.
//!
//! (Being built: see the open issues.)
