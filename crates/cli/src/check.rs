//! `warden check`: decide one tool request and print the decision.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use warden_governance_api::{Decision, RequestArgs, ToolRequest, Verdict};

use crate::cli::{CheckArgs, GlobalArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{print, print_json};
use crate::style::{Palette, Tone, escape};

/// Largest JSON request read, in bytes.
const MAX_REQUEST_BYTES: u64 = 1024 * 1024;

/// The contract's JSON answer of `warden check`.
#[derive(Debug, Serialize)]
struct CheckOutput<'a> {
    allowed: bool,
    reason: &'a str,
    matched_rules: &'a [String],
    tool: &'a str,
    action: &'a str,
    target: Option<&'a str>,
    /// The normalised, root-relative target that would be used; `None` when denied.
    resolved_target: Option<&'a str>,
}

/// Runs `warden check`: exit 0 when allowed, 1 when denied.
pub(crate) fn run(global: &GlobalArgs, args: &CheckArgs) -> Result<ExitCode, CliError> {
    // Read the request before loading anything, so a bad request is reported as such.
    let request = request(args)?;
    let context = Context::load(global)?;
    let verdict = context.policy.authorize(&context.root, &request);
    let decision: &Decision = verdict.decision();
    let resolved_target = match &verdict {
        Verdict::Allowed(authorized) => authorized.targets().first().map(String::as_str),
        Verdict::Denied(_) => None,
    };
    tracing::debug!(allowed = decision.allowed, rules = ?decision.matched_rules, "decided");
    let output = CheckOutput {
        allowed: decision.allowed,
        reason: &decision.reason,
        matched_rules: &decision.matched_rules,
        tool: &request.tool,
        action: &request.action,
        target: request.args.target.as_deref(),
        resolved_target,
    };
    if global.json {
        print_json(&output)?;
    } else {
        print(&human(
            &output,
            context.policy.origin(),
            global.color.stdout(),
        ))?;
    }
    Ok(ExitCode::from(if decision.allowed { 0 } else { 1 }))
}

/// The request from the flags, or from the JSON file or stdin.
fn request(args: &CheckArgs) -> Result<ToolRequest, CliError> {
    let Some(path) = &args.request else {
        // clap guarantees `--tool` and `--action` without `--request`.
        return Ok(ToolRequest {
            tool: args.tool.clone().unwrap_or_default(),
            action: args.action.clone().unwrap_or_default(),
            args: RequestArgs {
                target: args.target.clone(),
                extra_args: args.args.clone(),
            },
        });
    };
    let origin = CliError::origin(path);
    let text = read_bounded(path).map_err(|source| CliError::RequestRead {
        origin: origin.clone(),
        source,
    })?;
    if text.len() as u64 > MAX_REQUEST_BYTES {
        return Err(CliError::RequestTooLarge {
            origin,
            limit: MAX_REQUEST_BYTES,
        });
    }
    serde_json::from_str(&text).map_err(|source| CliError::RequestJson { origin, source })
}

/// Reads at most one byte more than the limit, so an oversized request is noticed without
/// reading all of it.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_REQUEST_BYTES + 1)
            .read_to_string(&mut text)?;
    } else {
        std::fs::File::open(path)?
            .take(MAX_REQUEST_BYTES + 1)
            .read_to_string(&mut text)?;
    }
    Ok(text)
}

/// The answer for people: the decision, why, and what the request would do. Everything from
/// the request or the policy file is escaped.
fn human(output: &CheckOutput<'_>, policy: &str, palette: Palette) -> String {
    let verdict = if output.allowed {
        palette.paint(Tone::Good, "allowed")
    } else {
        palette.paint(Tone::Bad, "denied")
    };
    let target = output
        .target
        .map(|t| format!(" {}", escape(t)))
        .unwrap_or_default();
    let rules = if output.matched_rules.is_empty() {
        "(none)".to_owned()
    } else {
        escape(&output.matched_rules.join(", ")).into_owned()
    };
    let mut text = format!(
        "{verdict}: {}/{}{target}\n  reason: {}\n  rules:  {rules}\n",
        escape(output.tool),
        escape(output.action),
        escape(output.reason)
    );
    if let Some(resolved) = output.resolved_target {
        let resolved = escape(resolved);
        let does = match (output.tool, output.action) {
            ("pytest", _) => format!("  runs:   {resolved}\n"),
            ("fs", "write") => format!("  writes: {resolved}\n"),
            _ => format!("  target: {resolved}\n"),
        };
        text.push_str(&does);
    }
    text.push_str(&format!("  policy: {}\n", escape(policy)));
    text
}
