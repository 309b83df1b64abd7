//! `warden mcp` on raw stdio, for what a well-behaved client never sends: lines that are not
//! JSON-RPC, and the end of stdin in the middle of a run. (The conversation of a real client is
//! in tests/tests/mcp_sdk.rs.)

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_e2e::{Fixture, processes_mentioning, warden_at};

/// How long any one answer may take (a verify on the hang fixture is cut by the tests).
const ANSWER_DEADLINE: Duration = Duration::from_secs(120);

/// A `warden mcp` process and the lines it writes on stdout.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Server {
    fn start(root: &Path) -> Server {
        let mut child = warden_at(root)
            .arg("mcp")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start warden mcp");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut server = Server {
            child,
            stdin,
            lines,
            stderr: Some(stderr),
        };
        server.send(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"}}})
            .to_string(),
        );
        let init = server.response(0);
        assert_eq!(init["result"]["serverInfo"]["name"], "warden", "{init}");
        server.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        server
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// The next message on stdout, as JSON (every line must be one).
    fn next(&self) -> Value {
        match self.lines.recv_timeout(ANSWER_DEADLINE) {
            Ok(line) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carries a line that is not JSON ({e}): {line}")),
            Err(RecvTimeoutError::Timeout) => panic!("no message within {ANSWER_DEADLINE:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("stdout closed"),
        }
    }

    /// The response with `id`, skipping notifications.
    fn response(&self, id: i64) -> Value {
        loop {
            let message = self.next();
            if message.get("method").is_some() {
                continue;
            }
            assert_eq!(message["id"], id, "responses out of order: {message}");
            return message;
        }
    }

    /// The next error response (with whatever id it has), skipping notifications.
    fn error(&self) -> Value {
        loop {
            let message = self.next();
            if message.get("method").is_none() {
                assert!(message.get("error").is_some(), "not an error: {message}");
                return message;
            }
        }
    }

    /// Closes stdin and waits (with `deadline`) for the server to exit; its exit code and
    /// stderr.
    fn close(mut self, deadline: Duration) -> (Option<i32>, String) {
        drop(self.stdin.take());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("warden mcp did not exit within {deadline:?} of the end of its stdin");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        (status.code(), stderr)
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

fn tools_list(id: i64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string()
}

#[test]
fn malformed_and_oversized_lines_get_json_rpc_errors_and_the_server_keeps_serving() {
    let fixture = Fixture::named("passing");
    let mut server = Server::start(fixture.root());

    server.send("this is not JSON");
    let error = server.error();
    assert_eq!(error["error"]["code"], -32700, "{error}");
    assert_eq!(error["id"], Value::Null);

    // Cut short mid-request: still no JSON.
    server.send(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"verify""#);
    assert_eq!(server.error()["error"]["code"], -32700);

    // JSON, but no JSON-RPC request: answered with its id.
    server.send(r#"{"id":8,"hello":"world"}"#);
    let error = server.error();
    assert_eq!(error["error"]["code"], -32600, "{error}");
    assert_eq!(error["id"], 8);
    server.send(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":"verify"}"#);
    let error = server.error();
    assert!(
        [-32600, -32602].contains(&error["error"]["code"].as_i64().unwrap()),
        "{error}"
    );
    assert_eq!(error["id"], 9);

    // A line over the 4 MiB limit, then an ordinary request: the first is refused, the second
    // answered.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{{"name":"check","arguments":{{"target":"{}"}}}}}}"#,
        "a".repeat(5 * 1024 * 1024)
    );
    server.send(&huge);
    let error = server.error();
    assert_eq!(error["error"]["code"], -32600, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than"),
        "{error}"
    );

    // A notification nobody knows is ignored (JSON-RPC answers no notification).
    server.send(r#"{"jsonrpc":"2.0","method":"notifications/whatever","params":{}}"#);

    server.send(&tools_list(11));
    let listed = server.response(11);
    assert_eq!(listed["result"]["tools"].as_array().unwrap().len(), 5);
    server.send(
        &json!({"jsonrpc": "2.0", "id": 12, "method": "tools/call",
            "params": {"name": "check", "arguments": {"target": "runtime/tests"}}})
        .to_string(),
    );
    let checked = server.response(12);
    assert_eq!(
        checked["result"]["structuredContent"]["allowed"], true,
        "{checked}"
    );

    let (code, stderr) = server.close(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn the_end_of_stdin_mid_run_ends_the_server_kills_the_run_and_records_nothing() {
    let fixture = Fixture::named("hang");
    let mut server = Server::start(fixture.root());
    server.send(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "verify", "arguments": {"target": "runtime/tests"},
            "_meta": {"progressToken": "run-1"}}})
        .to_string(),
    );
    // Wait until pytest names the hanging test: its grandchild is then about to start.
    let deadline = Instant::now() + ANSWER_DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "the hanging test never started");
        let message = server.next();
        assert_eq!(message["method"], "notifications/progress", "{message}");
        assert_eq!(message["params"]["progressToken"], "run-1");
        if message["params"]["message"]
            .as_str()
            .unwrap()
            .contains("running runtime/tests/test_hang.py::test_hangs")
        {
            break;
        }
    }
    let marker = fixture.root().display().to_string();
    let running = processes_mentioning(&marker);
    assert!(
        running.iter().any(|(_, cmd)| cmd.contains("pytest.main(")),
        "the run is not visible: {running:?}"
    );

    // The client goes away without a word.
    let (code, stderr) = server.close(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_mentioning(&marker).is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_mentioning(&marker), vec![]);
    assert!(
        !fixture.ledger().exists() || std::fs::read(fixture.ledger()).unwrap().is_empty(),
        "a run stopped by the end of stdin was recorded"
    );
}
