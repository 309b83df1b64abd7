//! `warden check` end to end: a JSON request is read up to 1 MiB, and a larger one is a usage
//! error (exit 2) that says so, whether it comes from a file or from stdin.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::time::Duration;

use warden_e2e::{Fixture, Run, run, warden};

const DEADLINE: Duration = Duration::from_secs(60);

/// The largest request `warden check --request` reads (crates/cli/src/check.rs).
const LIMIT: usize = 1024 * 1024;

/// A valid request padded with trailing white space (which JSON allows) to exactly `len`
/// bytes, so only its size can get it refused.
fn padded_request(len: usize) -> String {
    let request =
        r#"{"tool": "pytest", "action": "run", "args": {"target": "runtime/tests"}}"#.to_owned();
    assert!(request.len() <= len);
    let padding = " ".repeat(len - request.len());
    request + &padding
}

/// `warden --root ROOT [--json] check --request FROM`, with `stdin` as its input.
fn check_request(demo: &Fixture, from: &str, stdin: Option<&str>, json: bool) -> Run {
    let mut cmd = warden();
    cmd.arg("--root").arg(demo.root());
    if json {
        cmd.arg("--json");
    }
    cmd.args(["check", "--request", from]);
    run(&mut cmd, stdin.map(str::as_bytes), DEADLINE)
}

#[test]
fn a_request_over_one_mib_exits_2_with_a_clear_message() {
    let demo = Fixture::demo();
    let at_limit = demo.outside().join("at-limit.json");
    let over_limit = demo.outside().join("over-limit.json");
    fs::write(&at_limit, padded_request(LIMIT)).unwrap();
    fs::write(&over_limit, padded_request(LIMIT + 1)).unwrap();
    let at_limit = at_limit.display().to_string();
    let over_limit = over_limit.display().to_string();

    // Exactly at the limit the request is read and decided.
    let out = check_request(&demo, &at_limit, None, true);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.json()["allowed"], true);
    let stdin_at_limit = padded_request(LIMIT);
    let out = check_request(&demo, "-", Some(&stdin_at_limit), true);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);

    // One byte more, from a file or from stdin, and nothing is decided.
    let stdin_over = padded_request(LIMIT + 1);
    for (from, stdin, origin) in [
        (over_limit.as_str(), None, over_limit.as_str()),
        ("-", Some(stdin_over.as_str()), "stdin"),
    ] {
        let expected = "is larger than 1048576 bytes";
        let out = check_request(&demo, from, stdin, false);
        assert_eq!(out.code, Some(2), "{from}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.is_empty(), "{from}: {}", out.stdout);
        assert!(
            out.stderr.starts_with("warden: error: the request from "),
            "{from}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(expected), "{from}: {}", out.stderr);
        assert!(out.stderr.contains(origin), "{from}: {}", out.stderr);

        let out = check_request(&demo, from, stdin, true);
        assert_eq!(out.code, Some(2), "{from}: {}{}", out.stdout, out.stderr);
        let error = out.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(expected), "{from}: {error}");
        assert!(out.json().get("allowed").is_none(), "{}", out.stdout);
    }
}
