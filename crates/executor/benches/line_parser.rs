//! Throughput of the streaming pytest output parser, which sees every byte a run prints.
//!
//! `cargo bench -p warden-executor --bench line_parser`
//!
//! The `stream_*` group sets the parser beside two floors on the same bytes: finding every
//! line with `memchr` (SIMD) and touching it, the least any line-oriented reader does, and a
//! plain line count with the standard library (`split` on `\n`, then `count`). The stream is a recorded `pytest -v -ra` run when `WARDEN_BENCH_STREAM` names a file (`cargo xtask
//! bench` records one from a real 2,000-test run), repeated to at least
//! `WARDEN_BENCH_STREAM_MIB` MiB (default 128); without it, the synthetic session below.

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

/// The recorded stream from `WARDEN_BENCH_STREAM` repeated to the requested size, else the
/// synthetic session, with a name for it.
fn stream() -> (Vec<u8>, &'static str) {
    let Some(path) = std::env::var_os("WARDEN_BENCH_STREAM") else {
        return (session(20_000), "synthetic");
    };
    let one = std::fs::read(&path).unwrap_or_else(|e| {
        panic!("WARDEN_BENCH_STREAM={}: {e}", path.to_string_lossy());
    });
    assert!(!one.is_empty(), "WARDEN_BENCH_STREAM is an empty file");
    let mib: usize = std::env::var("WARDEN_BENCH_STREAM_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let mut all = Vec::with_capacity(mib * 1024 * 1024 + one.len());
    while all.len() < mib * 1024 * 1024 {
        all.extend_from_slice(&one);
    }
    (all, "recorded")
}

/// The floor: every line found (with `memchr`, as a fast line reader would) and handed on.
fn memchr_lines(stream: &[u8]) -> usize {
    let mut lines = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', stream) {
        black_box(&stream[start..end]);
        start = end + 1;
        lines += 1;
    }
    lines
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

fn parser_against_floor(c: &mut Criterion) {
    let (stream, source) = stream();
    let mut group = c.benchmark_group(format!("stream_{source}"));
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.sample_size(20);
    group.bench_function("parse", |b| b.iter(|| parse(black_box(&stream))));
    group.bench_function("floor_memchr_lines", |b| {
        b.iter(|| memchr_lines(black_box(&stream)))
    });
    group.bench_function("floor_std_line_count", |b| {
        b.iter(|| black_box(&stream).split(|b| *b == b'\n').count())
    });
    group.finish();
}

criterion_group!(benches, line_parser, parser_against_floor);
criterion_main!(benches);
