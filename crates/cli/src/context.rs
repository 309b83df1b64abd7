//! What every subcommand works against: the root and the policy that governs it.

use warden_build_mission::load_governance;
use warden_governance_api::{Policy, Root};

use crate::cli::GlobalArgs;
use crate::error::CliError;

/// The opened root and the loaded policy.
pub(crate) struct Context {
    pub(crate) root: Root,
    pub(crate) policy: Policy,
}

impl Context {
    /// Opens the root and loads the policy as [`load_governance`] does: `--policy FILE`, else
    /// `warden.toml` in the root if it exists, else the built-in policy.
    pub(crate) fn load(global: &GlobalArgs) -> Result<Context, CliError> {
        let (root, policy) = load_governance(&global.root, global.policy.as_deref())?;
        Ok(Context { root, policy })
    }
}
