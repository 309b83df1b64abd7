//! Throughput of the streaming pytest output parser, which sees every byte a run prints.
//!
//! `cargo bench -p warden-executor --bench line_parser`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_executor::lines::LineParser;

/// A `pytest -v -rA` session of `tests` tests over 50 files: progress lines, a FAILURES
/// section with tracebacks, a PASSES section, the short summary and the counts line.
fn session(tests: usize) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(
        "============================= test session starts ==============================\n",
    );
    out.push_str(
        "platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0 -- /venv/bin/python\n",
    );
    out.push_str(&format!(
        "rootdir: /repo\ncollecting ... collected {tests} items\n\n"
    ));
    let outcome = |i: usize| match i % 50 {
        0 => "FAILED",
        1 => "SKIPPED (needs network)",
        2 => "XFAIL (known bug)",
        _ => "PASSED",
    };
    let nodeid = |i: usize| {
        format!(
            "runtime/tests/pkg_{}/test_mod_{}.py::TestThing::test_case[{i}-param value]",
            i % 7,
            i % 50
        )
    };
    for i in 0..tests {
        let pct = (i + 1) * 100 / tests;
        let line = format!("{} {}", nodeid(i), outcome(i));
        out.push_str(&format!("{line:<72} [{pct:>3}%]\n"));
    }
    out.push_str(
        "\n=================================== FAILURES ===================================\n",
    );
    for i in (0..tests).filter(|i| i % 50 == 0) {
        out.push_str(&format!(
            "_____________________________ test_case[{i}] _____________________________\n\n"
        ));
        out.push_str("    def test_case(value):\n>       assert compute(value) == 42\nE       assert 41 == 42\nE        +  where 41 = compute(3)\n\n");
        out.push_str(&format!("runtime/tests/test_mod.py:{i}: AssertionError\n"));
        out.push_str(
            "----------------------------- Captured stdout call -----------------------------\n",
        );
        out.push_str(&"debug output of the test that failed\n".repeat(5));
    }
    out.push_str(
        "=========================== short test summary info ============================\n",
    );
    for i in 0..tests {
        match i % 50 {
            0 => out.push_str(&format!("FAILED {} - assert 41 == 42\n", nodeid(i))),
            1 => out.push_str("SKIPPED [1] runtime/tests/test_mod.py:10: needs network\n"),
            2 => out.push_str(&format!("XFAIL {} - known bug\n", nodeid(i))),
            _ => out.push_str(&format!("PASSED {}\n", nodeid(i))),
        }
    }
    let failed = tests.div_ceil(50);
    out.push_str(&format!(
        "============ {failed} failed, {} passed, {failed} skipped, {failed} xfailed in 12.34s ============\n",
        tests - 3 * failed
    ));
    out.into_bytes()
}

/// Output a test prints with capture disabled: long and short lines, none of them results.
fn flood(bytes: usize) -> Vec<u8> {
    let mut out = b"=== test session starts ===\nruntime/tests/test_flood.py::test_flood ".to_vec();
    let line = b"0123456789 flood line that is not a result, printed by the test itself\n";
    while out.len() < bytes / 2 {
        out.extend_from_slice(line);
    }
    // One huge line (cut for parsing), then pytest's outcome for the running test.
    out.extend(std::iter::repeat_n(b'x', bytes / 2));
    out.extend_from_slice(b"\nPASSED [100%]\n=== 1 passed in 1.00s ===\n");
    out
}

fn parse(stream: &[u8]) -> usize {
    let mut parser = LineParser::new();
    for chunk in stream.chunks(64 * 1024) {
        parser.feed(chunk);
    }
    parser.finish();
    parser.tests().len()
}

fn line_parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("line_parser");
    let session = session(20_000);
    assert_eq!(parse(&session), 20_000);
    group.throughput(Throughput::Bytes(session.len() as u64));
    group.bench_function("session_20k_tests", |b| {
        b.iter(|| parse(black_box(&session)))
    });
    let flood = flood(16 * 1024 * 1024);
    assert_eq!(parse(&flood), 1);
    group.throughput(Throughput::Bytes(flood.len() as u64));
    group.bench_function("flood_16MiB", |b| b.iter(|| parse(black_box(&flood))));
    group.finish();
}

criterion_group!(benches, line_parser);
criterion_main!(benches);
