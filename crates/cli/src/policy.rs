//! `warden policy`: the policy in force, with where each setting and rule came from.

use std::process::ExitCode;

use crate::cli::GlobalArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{print, print_json};

/// Prints the effective policy: commented TOML (itself a loadable policy file), or with
/// `--json` the `EffectivePolicy` document. Exit 0.
pub(crate) fn run(global: &GlobalArgs) -> Result<ExitCode, CliError> {
    let context = Context::load(global)?;
    let effective = context.policy.effective();
    if global.json {
        print_json(&effective)?;
    } else {
        // The policy file is the project's: whatever it holds is shown, never sent, to a terminal.
        print(&crate::style::escape_lines(&effective.to_toml()))?;
    }
    Ok(ExitCode::SUCCESS)
}
