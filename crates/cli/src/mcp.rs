//! `warden mcp`: the Model Context Protocol server on stdin and stdout (see `warden-mcp`).
//!
//! The root and policy options are those of every subcommand; the policy is read again on
//! every tool call, so an edit or a rollback applies to the next call. stdout carries only the
//! protocol: logs and diagnostics go to stderr.

use std::process::ExitCode;

use warden_mcp::{Warden, WardenServer, serve_stdio};

use crate::cli::{GlobalArgs, McpArgs};
use crate::context::Context;
use crate::error::CliError;

/// Serves until stdin closes. Exit 0 then; 2 when the root or policy cannot be used at the
/// start (so a misconfigured agent hears of it at once), or the session fails.
pub(crate) fn run(global: &GlobalArgs, args: &McpArgs) -> Result<ExitCode, CliError> {
    // Load once up front only to fail fast; every call loads again.
    let context = Context::load(global)?;
    tracing::info!(root = %context.root, policy = context.policy.origin(), "serving MCP on stdio");
    // This binary is the sandbox helper too (`warden __sandbox-exec`, dispatched in main): runs
    // are confined exactly as `warden verify` confines them.
    let launcher = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let warden = Warden::new(&global.root, global.policy.clone())
        .with_python(args.python.clone())
        .with_sandbox_launcher(Some(launcher));
    // One thread: calls are taken up in the order they arrive (see warden-mcp).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime
        .block_on(serve_stdio(WardenServer::new(warden)))
        .map_err(|e| CliError::Mission(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
