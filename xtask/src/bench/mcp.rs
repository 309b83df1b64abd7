//! The MCP row: what a `verify` costs through a running `warden mcp` against a `warden verify
//! --json` process, on the same one-test project.
//!
//! An agent keeps one `warden mcp` server for its whole session, so the handshake is done once;
//! each call then costs a JSON-RPC round trip on stdio instead of a process start. The rounds
//! alternate which contender goes first. Each contender has its own copy of the project, and
//! both keep a ledger (an MCP `verify` always records), so both read and append the same
//! evidence. A `ping` round trip on the same server is the protocol's own floor.
//!
//! On a loaded machine a run of pytest under the sandbox varies by hundreds of milliseconds,
//! far more than what is compared. So each call's time is also split: the report's
//! `duration_ms` is the verification itself (the same library code on both sides), and the
//! rest, the call's time outside it, is where the two ways differ (a process start, loading
//! and printing, against a JSON-RPC round trip). The target is judged on that rest; the whole
//! calls are shown beside it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use camino::Utf8Path;
use serde_json::{Value, json};

use super::{
    BenchError, Contenders, TESTS_DIR, execute, io_error, median, seconds, suite, time_with_spread,
    write_project, yes,
};
use crate::process::describe;

/// The most an MCP round trip may add to a `verify` over the command line's.
const TARGET_ADDED_SECS: f64 = 0.005;

/// How long one answer of the server may take.
const ANSWER_DEADLINE: Duration = Duration::from_secs(120);

/// Per-call times through the server and through the command line, round by round.
#[derive(Debug, Clone)]
pub(super) struct McpOverhead {
    /// `tools/call verify` round trips on one running server.
    pub(super) mcp: Vec<Duration>,
    /// `warden verify --json` processes, start to exit.
    pub(super) cli: Vec<Duration>,
    /// `ping` round trips on the same server.
    pub(super) ping: Vec<Duration>,
    /// Each `mcp` call's time outside the verification (minus the report's `duration_ms`).
    pub(super) mcp_outside: Vec<f64>,
    /// Each `cli` call's time outside the verification.
    pub(super) cli_outside: Vec<f64>,
}

/// A call's time outside the verification its report describes, in seconds.
fn outside(elapsed: Duration, report: &Value) -> Result<f64, BenchError> {
    let inside = report["duration_ms"]
        .as_u64()
        .ok_or_else(|| BenchError::Unexpected(format!("a report without duration_ms: {report}")))?;
    Ok(elapsed.as_secs_f64() - inside as f64 / 1e3)
}

/// A running `warden mcp` with its handshake done.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl Server {
    fn start(mut command: Command) -> Result<Server, BenchError> {
        command
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let described = describe(&command);
        let mut child = command
            .spawn()
            .map_err(io_error(format!("start `{described}`")))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let (send, lines) = mpsc::channel();
        thread::spawn(move || {
            let Some(stdout) = stdout else { return };
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            stdin,
            lines,
            next_id: 0,
        };
        let init = server.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "xtask-bench", "version": "0"}}),
        )?;
        if init.0["result"]["serverInfo"]["name"] != "warden" {
            return Err(BenchError::Unexpected(format!(
                "`{described}` answered initialize with {}",
                init.0
            )));
        }
        server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(server)
    }

    fn send(&mut self, message: &Value) -> Result<(), BenchError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| BenchError::Unexpected("warden mcp's stdin is closed".into()))?;
        let mut line = message.to_string();
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(io_error("write to warden mcp"))
    }

    /// Sends a request and waits for its response: the response and the round trip's time.
    fn request(&mut self, method: &str, params: Value) -> Result<(Value, Duration), BenchError> {
        self.next_id += 1;
        let id = self.next_id;
        let started = Instant::now();
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let line = self.lines.recv_timeout(ANSWER_DEADLINE).map_err(|e| {
                BenchError::Unexpected(format!("no answer from warden mcp to {method}: {e}"))
            })?;
            let message: Value = serde_json::from_str(&line).map_err(|e| {
                BenchError::Unexpected(format!("warden mcp wrote a line that is not JSON ({e})"))
            })?;
            if message["id"] == id {
                return Ok((message, started.elapsed()));
            }
        }
    }

    /// One `verify` of the test directory; checks that `passed` tests passed. Its time, and
    /// its time outside the verification.
    fn verify(&mut self, passed: u64) -> Result<(Duration, f64), BenchError> {
        let (answer, elapsed) = self.request(
            "tools/call",
            json!({"name": "verify", "arguments": {"target": TESTS_DIR}}),
        )?;
        let report = &answer["result"]["structuredContent"];
        if answer["result"]["isError"] != false || report["counts"]["passed"] != passed {
            return Err(BenchError::Unexpected(format!(
                "expected {passed} passed tests through warden mcp, got {answer}"
            )));
        }
        Ok((elapsed, outside(elapsed, report)?))
    }

    /// Closes stdin (the server then exits) and reaps it.
    fn stop(mut self) -> Result<(), BenchError> {
        drop(self.stdin.take());
        let status = self.child.wait().map_err(io_error("wait for warden mcp"))?;
        if !status.success() {
            return Err(BenchError::Unexpected(format!(
                "warden mcp exited with {status} at the end of its input"
            )));
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Contenders<'_> {
    /// `verify` through one running `warden mcp` against `warden verify --json` processes.
    pub(super) fn mcp_overhead(
        &self,
        dir: &Utf8Path,
        rounds: usize,
    ) -> Result<McpOverhead, BenchError> {
        let project = suite(1, 1, 0);
        let server_root = dir.join("mcp-server");
        let cli_root = dir.join("mcp-cli");
        for root in [&server_root, &cli_root] {
            write_project(root, &project)?;
        }
        let mut server = Server::start(self.warden(&server_root))?;
        let cli = || {
            let mut command = self.warden(&cli_root);
            command.args(["verify", TESTS_DIR, "--json"]);
            let described = describe(&command);
            let done = execute(&mut command, false)?;
            let report: Value = serde_json::from_slice(&done.stdout)
                .map_err(|_| done.unexpected("no JSON report", &described))?;
            if done.code() != Some(0) || report["counts"]["passed"] != 1 {
                return Err(done.unexpected("expected 1 passed test", &described));
            }
            Ok((done.elapsed, outside(done.elapsed, &report)?))
        };
        // Warm-up: each copy gets its bytecode cache and its ledger's first record.
        server.verify(1)?;
        cli()?;
        let mut result = McpOverhead {
            mcp: Vec::new(),
            cli: Vec::new(),
            ping: Vec::new(),
            mcp_outside: Vec::new(),
            cli_outside: Vec::new(),
        };
        for round in 0..rounds {
            for server_turn in [round % 2 == 0, round % 2 != 0] {
                if server_turn {
                    let (elapsed, outside) = server.verify(1)?;
                    result.mcp.push(elapsed);
                    result.mcp_outside.push(outside);
                    result.ping.push(server.request("ping", json!({}))?.1);
                } else {
                    let (elapsed, outside) = cli()?;
                    result.cli.push(elapsed);
                    result.cli_outside.push(outside);
                }
            }
        }
        server.stop()?;
        Ok(result)
    }
}

impl McpOverhead {
    /// The table's row.
    pub(super) fn row(&self, out: &mut String) {
        let mcp = seconds(&self.mcp);
        let cli = seconds(&self.cli);
        let ping = seconds(&self.ping);
        // Paired by round, as the overhead rows are.
        let paired =
            |a: &[f64], b: &[f64]| median(&a.iter().zip(b).map(|(a, b)| a - b).collect::<Vec<_>>());
        let whole = paired(&mcp, &cli);
        let added = paired(&self.mcp_outside, &self.cli_outside);
        let _ = std::fmt::Write::write_fmt(
            out,
            format_args!(
                "| MCP round trip: `verify` of 1 passing test through one running `warden mcp` \
                 (handshake once; {} rounds) | {} per call | a `warden verify --json` process \
                 per call: {} | {:+.1} ms per call outside the verification itself (MCP {:.1} \
                 ms, command line {:.1} ms; whole calls {:+.1} ms), medians of per-round \
                 differences; a `ping` round trip {:.2} ms | ≤ +{:.0} ms | {} |\n",
                mcp.len(),
                time_with_spread(&mcp),
                time_with_spread(&cli),
                added * 1e3,
                median(&self.mcp_outside) * 1e3,
                median(&self.cli_outside) * 1e3,
                whole * 1e3,
                median(&ping) * 1e3,
                TARGET_ADDED_SECS * 1e3,
                yes(added <= TARGET_ADDED_SECS)
            ),
        );
    }
}
