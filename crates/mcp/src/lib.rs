//! Serves Warden's verbs to coding agents over the Model Context Protocol.
//!
//! `warden mcp` runs [`serve`] on stdin and stdout: an MCP server (the official Rust SDK,
//! `rmcp`) whose tools are Warden's verbs, so an agent that may not run pytest in a shell runs
//! its tests through Warden's policy, deadline, classifier and ledger instead:
//!
//! - `verify` ([`Warden::verify`]): the contract's verify document as structured content and
//!   a short summary as text, with `notifications/progress` while tests run and cancellation
//!   that kills the run's process tree and records nothing;
//! - `check` ([`Warden::check`]): the policy's decision on a request, running nothing;
//! - `policy` ([`Warden::policy`]): the effective policy, so an agent learns what it may run;
//! - `classify` and `ledger_stats` ([`Warden::classify`], [`Warden::ledger_stats`]): the
//!   project's own ledger, looked at again.
//!
//! The orchestration is build-mission's [`Mission`](warden_build_mission::Mission), the same
//! the command line runs; this crate adds only the protocol. Each tool's JSON Schema is
//! generated from its argument type in [`params`]. Logs go to stderr only: stdout is the
//! protocol. See `docs/contract.md` for the MCP surface and `docs/agents.md` for the
//! configuration of OpenCode, Claude Code and Codex CLI.
//!
//! The tools answer without a transport too, which is how they are tested:
//!
//! ```
//! use warden_mcp::{Warden, params::CheckParams};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("runtime/tests"))?;
//! let warden = Warden::new(dir.path(), None);
//!
//! let allowed = warden.check(CheckParams { target: Some("runtime/tests".into()), ..Default::default() });
//! assert_eq!(allowed.structured["allowed"], true);
//!
//! // Out of scope: a normal answer that says why, not an error.
//! let denied = warden.check(CheckParams { target: Some("src".into()), ..Default::default() });
//! assert_eq!(denied.structured["allowed"], false);
//! assert!(!denied.is_error);
//!
//! // Every tool, with a description and a JSON Schema for its arguments.
//! let tools = warden_mcp::tools();
//! assert_eq!(tools.len(), 5);
//! assert!(tools.iter().all(|t| t.description.is_some() && t.input_schema.contains_key("type")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod params;
mod server;
mod summary;
mod tools;
pub mod transport;

use std::time::Duration;

pub use server::{WardenServer, tools};
pub use tools::{RunProgress, ToolOutput, Warden};

use rmcp::ServiceExt as _;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::transport::LineTransport;

/// How long runs still going at shutdown are given to be stopped and reaped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the server could not serve.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The MCP handshake failed (the client sent no valid `initialize`, or went away).
    #[error("the MCP session could not start: {0}; is an MCP client talking on stdin?")]
    Start(String),
    /// The session ended abnormally.
    #[error("the MCP session ended abnormally: {0}")]
    Session(String),
}

/// Serves `server` on `read` and `write` until the client closes its end (EOF) or the session
/// fails; then stops every run still going (its process tree killed, nothing recorded) and
/// waits for it to be reaped before returning.
pub async fn serve<R, W>(server: WardenServer, read: R, write: W) -> Result<(), McpError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = server.shutdown();
    let idle = server.clone();
    let transport = LineTransport::new(read, write).cancel_on_close(shutdown.clone());
    let session = server
        .serve(transport)
        .await
        .map_err(|e| McpError::Start(e.to_string()));
    let ended = match session {
        Ok(running) => running
            .waiting()
            .await
            .map(|reason| tracing::info!(?reason, "the MCP session ended"))
            .map_err(|e| McpError::Session(e.to_string())),
        Err(e) => Err(e),
    };
    shutdown.cancel();
    // A run stopped by the shutdown releases its turn once its process group is gone.
    if tokio::time::timeout(SHUTDOWN_GRACE, idle.warden().idle())
        .await
        .is_err()
    {
        tracing::warn!("a run did not stop within {SHUTDOWN_GRACE:?} of the shutdown");
    }
    ended
}

/// [`serve`] on the process's stdin and stdout.
pub async fn serve_stdio(server: WardenServer) -> Result<(), McpError> {
    serve(server, tokio::io::stdin(), tokio::io::stdout()).await
}
