//! The MCP side: tool definitions (names, descriptions, schemas) and the `ServerHandler` that
//! routes `tools/call` to [`Warden`], turns progress into `notifications/progress` and a
//! cancellation into a stopped run.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::params::{CheckParams, ClassifyParams, NoParams, VerifyParams};
use crate::tools::{ToolOutput, Warden};

/// What the server tells an agent about itself when it connects.
const INSTRUCTIONS: &str = "Warden runs this project's pytest suite under a fail-closed policy. \
Run tests ONLY through the `verify` tool, never with pytest in a shell: it runs them with a hard \
deadline that kills the whole process tree, tells flakes from real failures by rerunning, \
classifies the result, hands back a retry context (what failed, why, what to do next) and \
records tamper-evident evidence. Call `policy` once to learn which targets and pytest options \
are allowed, `check` to ask before a run, `classify` and `ledger_stats` to look back at earlier \
runs.";

/// The five tools, their descriptions and schemas.
pub fn tools() -> Vec<Tool> {
    vec![
        tool::<VerifyParams>(
            "verify",
            "Run the project's tests for a target under Warden's policy and get the verdict. Use \
             this after every change, instead of running pytest yourself. Give a target (a test \
             directory, file, or node id relative to the project root; call `policy` for what \
             is allowed), optionally extra pytest arguments (e.g. [\"-x\"] or [\"-k\", \
             \"login\"]), a shorter timeout and fewer retries. Failed tests are rerun to tell \
             flakes from real failures. The answer is the verify report (status passed, \
             failed, denied, timeout or error; failure_class; counts; every test with its \
             outcome and message; flaky_tests; retry_context with failed_tests, \
             error_messages and a suggestion of what to do next) and a short summary. A denied \
             request or a failing suite is a normal answer, not an error: read \
             decision.reason or retry_context.suggestion and act on it. Progress is reported \
             while tests run when the call carries a progress token; cancelling the call kills \
             the run and records nothing.",
            false,
        ),
        tool::<CheckParams>(
            "check",
            "Ask whether a request would be allowed, without running anything: the policy's \
             decision (allowed, reason, matched_rules, resolved_target) for running pytest on a \
             target with extra arguments (tool `pytest`, action `run`, the default) or for \
             writing a path (tool `fs`, action `write`). Use it before `verify` when unsure \
             whether a target or an option is in scope.",
            true,
        ),
        tool::<NoParams>(
            "policy",
            "The policy in force for this project: its limits (timeout_secs, retries, budget, \
             output cap, python), its [pytest] settings (the extra options allowed), and every \
             rule with its effect, tool, action and scope paths, each with where it came from \
             (the built-in policy or the project's warden.toml). Call it once at the start to \
             learn which targets and pytest options you may use.",
            true,
        ),
        tool::<ClassifyParams>(
            "classify",
            "Classify a recorded verification again, running nothing: the latest record of \
             the project's evidence ledger (or the one with the given seq), with the whole \
             ledger as history, so a test that has since passed on the same code shows up as \
             flaky. Answers failure_class, flaky_tests and the retry_context.",
            true,
        ),
        tool::<NoParams>(
            "ledger_stats",
            "The success metrics of the project's evidence ledger: runs, pass rate, failure \
             classes, timeout and flake rates, the flakiest tests and total test time. Use it \
             to see whether the suite is getting healthier or to find chronically flaky tests.",
            true,
        ),
    ]
}

fn tool<P: JsonSchema>(name: &'static str, description: &'static str, read_only: bool) -> Tool {
    let schema = schemars::schema_for!(P);
    let object = match serde_json::to_value(schema) {
        Ok(serde_json::Value::Object(object)) => object,
        // A derived schema is always an object; an empty one still accepts the call.
        _ => JsonObject::new(),
    };
    let annotations = ToolAnnotations::new()
        .read_only(read_only)
        .destructive(false)
        .open_world(false);
    Tool::new(name, description, Arc::new(object)).annotate(annotations)
}

/// The MCP server: [`Warden`]'s tools behind rmcp's `ServerHandler`.
#[derive(Debug, Clone)]
pub struct WardenServer {
    warden: Arc<Warden>,
    /// Fired when the server shuts down: every run still going is stopped.
    shutdown: CancellationToken,
}

impl WardenServer {
    /// A server for these tools.
    pub fn new(warden: Warden) -> WardenServer {
        WardenServer {
            warden: Arc::new(warden),
            shutdown: CancellationToken::new(),
        }
    }

    /// The token that stops every run when the server shuts down.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The tools this server answers with.
    pub fn warden(&self) -> &Warden {
        &self.warden
    }
}

/// Arguments that do not fit the tool's schema are the caller's error (-32602), not a result.
fn parse<P: DeserializeOwned>(tool: &str, arguments: Option<JsonObject>) -> Result<P, ErrorData> {
    let value = serde_json::Value::Object(arguments.unwrap_or_default());
    serde_json::from_value(value).map_err(|e| invalid(tool, &e))
}

fn invalid(tool: &str, problem: &dyn std::fmt::Display) -> ErrorData {
    ErrorData::invalid_params(format!("invalid arguments for `{tool}`: {problem}"), None)
}

/// The `progress` of the next notification, or `None` to send none. It is the count of tests
/// done, made to increase with each notification as MCP requires: a report with no more tests
/// done (the running test changed, a rerun began) moves it halfway up to the next whole test,
/// never reaching it, and never past the `total`.
fn next_progress(last: Option<f64>, done: u64, total: Option<f64>) -> Option<f64> {
    let done = done as f64;
    let Some(last) = last.filter(|last| *last >= done) else {
        return Some(done);
    };
    let ceiling = last.floor() + 1.0;
    if total.is_some_and(|total| ceiling > total) {
        return None;
    }
    let next = last + (ceiling - last) / 2.0;
    (next > last && next < ceiling).then_some(next)
}

fn result(output: ToolOutput) -> CallToolResult {
    let mut result = CallToolResult::structured(output.structured.clone());
    // The summary first, then the document as JSON text for clients that do not read
    // structured content.
    result.content = vec![
        ContentBlock::text(output.summary),
        ContentBlock::text(output.structured.to_string()),
    ];
    result.is_error = Some(output.is_error);
    result
}

impl ServerHandler for WardenServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        tracing::info!(tool = name, "tool call");
        let output = match name {
            "verify" => {
                let params: VerifyParams = parse(name, request.arguments)?;
                params.validate().map_err(|e| invalid(name, &e))?;
                let cancel = CancellationToken::new();
                // The client's cancellation and the server's shutdown both stop the run.
                let stop = {
                    let cancel = cancel.clone();
                    let (request_ct, shutdown) = (context.ct.clone(), self.shutdown.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            () = request_ct.cancelled() => {}
                            () = shutdown.cancelled() => {}
                        }
                        cancel.cancel();
                    })
                };
                let progress = context.meta.get_progress_token().map(|token| {
                    let (sink, mut reports) = mpsc::unbounded_channel::<crate::RunProgress>();
                    let peer = context.peer.clone();
                    tokio::spawn(async move {
                        let mut last = None;
                        while let Some(report) = reports.recv().await {
                            let total = report
                                .collected
                                .filter(|_| report.attempt == 1)
                                .map(|c| c as f64);
                            let Some(value) = next_progress(last, report.done, total) else {
                                continue;
                            };
                            last = Some(value);
                            let mut param = ProgressNotificationParam::new(token.clone(), value)
                                .with_message(report.message());
                            if let Some(total) = total {
                                param = param.with_total(total);
                            }
                            if let Err(e) = peer.notify_progress(param).await {
                                tracing::debug!(error = %e, "cannot send progress");
                                break;
                            }
                        }
                    });
                    sink
                });
                let output = self.warden.verify(params, progress, cancel).await;
                stop.abort();
                output
            }
            "check" => self.warden.check(parse(name, request.arguments)?),
            "policy" => {
                let NoParams {} = parse(name, request.arguments)?;
                self.warden.policy()
            }
            "classify" => {
                let params: ClassifyParams = parse(name, request.arguments)?;
                params.validate().map_err(|e| invalid(name, &e))?;
                self.warden.classify(params)
            }
            "ledger_stats" => {
                let NoParams {} = parse(name, request.arguments)?;
                self.warden.ledger_stats()
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown tool `{other}`; Warden's tools are verify, check, policy, \
                         classify and ledger_stats"
                    ),
                    None,
                ));
            }
        };
        Ok(result(output).into())
    }
}

#[cfg(test)]
mod tests {
    use super::next_progress;

    #[test]
    fn progress_strictly_increases_stays_below_the_next_test_and_within_the_total() {
        assert_eq!(next_progress(None, 0, None), Some(0.0));
        // Nothing more done: halfway up to the next test, again and again.
        assert_eq!(next_progress(Some(0.0), 0, Some(2.0)), Some(0.5));
        assert_eq!(next_progress(Some(0.5), 0, Some(2.0)), Some(0.75));
        // A test finished: its count again.
        assert_eq!(next_progress(Some(0.75), 1, Some(2.0)), Some(1.0));
        assert_eq!(next_progress(Some(1.0), 3, None), Some(3.0));
        // All done: nothing may go past the total.
        assert_eq!(next_progress(Some(2.0), 2, Some(2.0)), None);
        // Without a total (reruns), repeats still rise.
        assert_eq!(next_progress(Some(2.0), 2, None), Some(2.5));
        // Halving ends where the floating point does: no notification rather than a repeat.
        let mut last = 5.0;
        let mut sent = 0;
        while let Some(next) = next_progress(Some(last), 5, None) {
            assert!(next > last && next < 6.0, "{next}");
            last = next;
            sent += 1;
        }
        assert!(sent > 40, "{sent}");
    }
}
