//! Opening a root and loading the policy that governs it, as every Warden front end does it
//! (the command line and the MCP server alike), so they can never disagree about which policy
//! is in force.

use std::path::Path;

use warden_governance_api::{Policy, PolicyError, Root};

/// The policy file picked up from the root when none is named.
pub const ROOT_POLICY: &str = "warden.toml";

/// Opens `root` and loads the policy: `policy` when named, else [`ROOT_POLICY`] in the root if
/// it exists, else the built-in policy. A policy file's examples are checked against this root,
/// so a file that does not hold for this repository does not load. Nothing is cached: every
/// call reads the file again, so a rollback takes effect at the next call.
pub fn load_governance(root: &Path, policy: Option<&Path>) -> Result<(Root, Policy), PolicyError> {
    let root = Root::new(root)?;
    let policy = match policy {
        Some(path) => Policy::load_for(&root, path)?,
        None => {
            let in_root = root.path().join(ROOT_POLICY);
            // A dangling symlink counts as present: loading it then fails, loudly.
            if Path::new(&in_root).symlink_metadata().is_ok() {
                Policy::load_for(&root, &in_root)?
            } else {
                Policy::builtin()
            }
        }
    };
    tracing::info!(root = %root, policy = policy.origin(), "governance loaded");
    Ok((root, policy))
}
