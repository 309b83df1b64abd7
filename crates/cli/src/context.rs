//! What every subcommand works against: the root and the policy that governs it.

use std::path::Path;

use warden_governance_api::{Policy, Root};

use crate::cli::GlobalArgs;
use crate::error::CliError;

/// The policy file picked up from the root when `--policy` is not given.
const ROOT_POLICY: &str = "warden.toml";

/// The opened root and the loaded policy.
pub(crate) struct Context {
    pub(crate) root: Root,
    pub(crate) policy: Policy,
}

impl Context {
    /// Opens the root and loads the policy: `--policy FILE`, else `warden.toml` in the root if
    /// it exists, else the built-in policy. A policy file's examples are checked against this
    /// root, so a file that does not hold for this repository does not load.
    pub(crate) fn load(global: &GlobalArgs) -> Result<Context, CliError> {
        let root = Root::new(&global.root)?;
        let policy = match &global.policy {
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
        Ok(Context { root, policy })
    }
}
