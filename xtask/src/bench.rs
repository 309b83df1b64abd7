//! `cargo xtask bench`: Warden side by side with what it replaces, as a Markdown table.
//!
//! It builds `warden` in release mode, generates fixture projects in a temporary directory, and
//! runs every comparison from this one process, alternating the contenders round by round so
//! that drift in the machine's load hits both alike. Figures are medians, with the spread
//! (lowest to highest) in brackets. The overhead rows give a 95 % interval for their median
//! ([`stats`]) and say a target is met only when the whole interval is within it (missed when
//! the whole interval is beyond it, unresolved otherwise), beside a control: bare pytest
//! against itself on a second copy, whose difference from 1 is this machine's noise.
//!
//! 1. **Overhead**: `warden verify --no-ledger --json` against bare `python -m pytest` with the
//!    command line Warden itself used (read from Warden's debug log; only the project directory
//!    and the results records' path differ), on 2,000 tests and on one, and against the control
//!    (the same bare command in a copy of its own). Each contender has its own
//!    copy of the project: the bare one keeps pytest's bytecode caches as a user's repeated runs
//!    would, Warden's never gets any (Warden's runs write no bytecode into the tree), so the
//!    cost of that choice is counted as Warden's.
//! 2. **Memory**: the peak resident set (`VmHWM`, polled) of the `warden` process itself, not
//!    pytest's, while a test prints 2, 20 and 200 MiB, against `xtask/bench/naive_runner.py`,
//!    which captures everything and truncates afterwards.
//! 3. **Kill latency**: `tests/fixtures/hang` (a test that ignores SIGTERM, with a grandchild
//!    holding the output pipes) under a 2 s timeout and a policy with a 1 s grace period: the
//!    time from the deadline to `verify` returning, and the processes of the run left after it.
//!    The clock starts before Warden does, so Warden's own startup counts against it. One
//!    warm-up round goes first, unmeasured (its leftovers still count): the first run of a
//!    fresh tree under the sandbox compiles the tree's bytecode after the run, a one-time cost
//!    of the bytecode cache (the overhead rows warm up too), not of stopping a run.
//! 4. **Sandbox setup** ([`sandbox`]): the helper running `/bin/true` confined against
//!    `/bin/true`.
//! 5. **Parser**: the executor's criterion bench on the standard output recorded from a bare
//!    2,000-test run, repeated to 128 MiB, beside two floors on the same bytes.
//! 6. **Policy and classifier**: the criterion benches of `warden-policy` (decisions per second)
//!    and `warden-classifier` (10k, 100k and 1M history runs).
//! 7. **MCP round trip**: `verify` of one test through a running `warden mcp` (handshake done
//!    once) against a `warden verify --json` process per call (see [`mcp`]).
//!
//! The table goes to stdout and to `target/bench/results.md`. `cargo xtask test` never runs
//! this (it only builds the criterion benches); speed is measured here, not in timed tests.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use crate::process::{self, cargo, describe};
use crate::venv::{self, VenvError};

mod mcp;
mod sandbox;
mod stats;

pub(crate) use stats::{Interval, Verdict, median, median_interval, spread};

/// Sizes of output a test prints in the memory comparison, in MiB.
const FLOOD_MIB: [u64; 3] = [2, 20, 200];

/// The kill-latency run's timeout and the grace period of its policy, in seconds.
const KILL_TIMEOUT_SECS: u64 = 2;
const KILL_GRACE_SECS: u64 = 1;

/// How often the memory comparison samples a process's peak resident set.
const MEMORY_POLL: Duration = Duration::from_millis(1);

/// The size the recorded pytest stream is repeated to for the parser bench, in MiB.
const STREAM_MIB: u64 = 128;

/// The node ids' directory in every generated project (the default policy allows it).
const TESTS_DIR: &str = "runtime/tests";

/// `cargo xtask bench` options.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Fewer rounds and shorter criterion runs: a smoke test of the bench, not figures to quote.
    #[arg(long)]
    quick: bool,
    /// Rounds of the 2,000-test overhead comparison (each runs all four contenders), instead
    /// of the plan's. More rounds narrow the 95 % interval, roughly as one over their root.
    #[arg(long, value_name = "N")]
    many_rounds: Option<usize>,
    /// Rounds of the one-test overhead comparison, instead of the plan's.
    #[arg(long, value_name = "N")]
    one_rounds: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    #[error(transparent)]
    Venv(#[from] VenvError),
    #[error("`{command}` failed: {problem}")]
    Command { command: String, problem: String },
    #[error("could not {what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{0}")]
    Unexpected(String),
    #[error("the temporary directory {0} is not UTF-8")]
    NonUtf8Temp(String),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// How many rounds each comparison gets.
#[derive(Debug, Clone, Copy)]
struct Plan {
    many_tests: usize,
    one_test: usize,
    memory: usize,
    kill: usize,
    /// Rounds of the MCP round trip comparison.
    mcp: usize,
    sandbox: usize,
    /// Criterion's measurement time per benchmark, in seconds.
    criterion_secs: u32,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                many_tests: 1,
                one_test: 3,
                memory: 1,
                kill: 1,
                mcp: 3,
                sandbox: 5,
                criterion_secs: 1,
            }
        } else {
            Plan {
                many_tests: 61,
                one_test: 201,
                memory: 3,
                kill: 3,
                mcp: 61,
                sandbox: 201,
                criterion_secs: 8,
            }
        }
    }
}

/// Runs every comparison for the workspace at `root` and prints the table.
pub(crate) fn run(root: &Utf8Path, args: &BenchArgs) -> Result<(), BenchError> {
    let mut plan = Plan::new(args.quick);
    plan.many_tests = args.many_rounds.unwrap_or(plan.many_tests);
    plan.one_test = args.one_rounds.unwrap_or(plan.one_test);
    let python = venv::ensure(root)?;
    let warden = build_warden(root)?;
    let out_dir = root.join("target").join("bench");
    fs::create_dir_all(&out_dir).map_err(io_error(format!("create {out_dir}")))?;
    let temp = tempfile::Builder::new()
        .prefix("warden-bench-")
        .tempdir()
        .map_err(io_error("create a temporary directory"))?;
    let dir = Utf8Path::from_path(temp.path())
        .ok_or_else(|| BenchError::NonUtf8Temp(temp.path().display().to_string()))?;
    let machine = Machine::probe(&python);
    let contenders = Contenders {
        workspace: root,
        warden: &warden,
        python: &python,
    };

    println!("==> overhead: 2,000 tests, {} rounds", plan.many_tests);
    let many = contenders.overhead(dir, "many", &suite(20, 50, 50), 2_000, plan.many_tests)?;
    let stream_path = out_dir.join("pytest-2000-v-ra.txt");
    fs::write(&stream_path, &many.bare_stdout).map_err(io_error(format!("write {stream_path}")))?;
    println!("==> overhead: 1 test, {} rounds", plan.one_test);
    let one = contenders.overhead(dir, "one", &suite(1, 1, 0), 1, plan.one_test)?;
    println!("==> MCP round trip: 1 test, {} rounds", plan.mcp);
    let mcp = contenders.mcp_overhead(dir, plan.mcp)?;
    println!(
        "==> memory: a test prints {FLOOD_MIB:?} MiB, {} rounds",
        plan.memory
    );
    let memory = FLOOD_MIB
        .iter()
        .map(|&mib| contenders.memory(dir, mib, plan.memory))
        .collect::<Result<Vec<_>, _>>()?;
    println!("==> kill latency, {} rounds", plan.kill);
    let kill = contenders.kill_latency(dir, plan.kill)?;
    println!("==> sandbox setup, {} rounds", plan.sandbox);
    let sandbox = sandbox::measure(&warden, &python, dir, plan.sandbox)?;

    let home = out_dir.join("criterion");
    println!("==> parser throughput (criterion)");
    let parser = parser_bench(root, &home, &stream_path, plan)?;
    println!("==> policy decisions (criterion)");
    let policy = criterion(root, &home, "warden-policy", "decide", "policy", &[], plan)
        .and_then(|()| Estimate::read(&home, "policy/decide_mixed"))?;
    println!("==> classifier on long histories (criterion)");
    criterion(
        root,
        &home,
        "warden-classifier",
        "classify",
        "classify_history",
        &[],
        plan,
    )?;
    let classifier = [10_000u64, 100_000, 1_000_000]
        .iter()
        .map(|runs| Estimate::read(&home, &format!("classify_history/{runs}")).map(|e| (*runs, e)))
        .collect::<Result<Vec<_>, _>>()?;

    let report = Report {
        machine: machine.finish(),
        many,
        one,
        mcp,
        memory,
        kill,
        sandbox,
        parser,
        policy,
        classifier,
    };
    let markdown = report.markdown();
    let results = out_dir.join("results.md");
    fs::write(&results, &markdown).map_err(io_error(format!("write {results}")))?;
    println!("\n{markdown}");
    println!("(written to {results})");
    Ok(())
}

/// Builds `warden` (see [`process::build_warden`]).
fn build_warden(root: &Utf8Path) -> Result<Utf8PathBuf, BenchError> {
    process::build_warden(root, true).map_err(|e| BenchError::Command {
        command: e.command,
        problem: e.problem,
    })
}

/// The machine the figures come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) python: String,
    pub(crate) pytest: String,
    pub(crate) load_start: String,
    pub(crate) load_end: String,
}

impl Machine {
    pub(crate) fn probe(python: &Utf8Path) -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_owned())
            })
        };
        // Virtual machines often show only a brand name; family and model say which CPU.
        let cpu = match (field("model name"), field("cpu family"), field("model")) {
            (Some(name), Some(family), Some(model)) => {
                format!("{name} (family {family}, model {model})")
            }
            (Some(name), _, _) => name,
            _ => "unknown CPU".to_owned(),
        };
        let versions = output_line(Command::new(python).args([
            "-c",
            "import platform, pytest; print(platform.python_version(), pytest.__version__)",
        ]));
        let (python, pytest) = versions
            .split_once(' ')
            .map_or((versions.clone(), String::new()), |(a, b)| {
                (a.to_owned(), b.to_owned())
            });
        Machine {
            cpu,
            cores: thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned()),
            rustc: output_line(Command::new("rustc").arg("--version")),
            python,
            pytest,
            load_start: load_average(),
            load_end: String::new(),
        }
    }

    pub(crate) fn finish(mut self) -> Machine {
        self.load_end = load_average();
        self
    }
}

/// The first line a command prints, or `unknown`.
fn output_line(command: &mut Command) -> String {
    command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A fixture project: files by root-relative path.
type Project = Vec<(String, String)>;

/// `modules` test modules with `plain` plain tests and a test parametrised `params` ways each.
fn suite(modules: usize, plain: usize, params: usize) -> Project {
    (0..modules)
        .map(|m| {
            let mut text = String::from("import pytest\n\n\n");
            for t in 0..plain {
                let _ = write!(text, "def test_case_{t:03}():\n    assert {t} + 1 == {}\n\n\n", t + 1);
            }
            if params > 0 {
                let _ = write!(
                    text,
                    "@pytest.mark.parametrize(\"n\", range({params}))\ndef test_param(n):\n    assert n * 2 == n + n\n"
                );
            }
            (format!("{TESTS_DIR}/test_bench_{m:02}.py"), text)
        })
        .collect()
}

/// One test that writes `mib` MiB to the real standard output (capture disabled, as a test
/// that prints while debugging does), then passes.
fn flood(mib: u64) -> Project {
    let text = format!(
        "import sys\n\n\n\
         def test_prints(capfd):\n    \
             line = b\"flood: a line of output that a test prints, 0123456789 abcdefghij\\n\"\n    \
             block = (line * (1024 * 1024 // len(line) + 1))[: 1024 * 1024]\n    \
             with capfd.disabled():\n        \
                 for _ in range({mib}):\n            \
                     sys.stdout.buffer.write(block)\n        \
                 sys.stdout.buffer.flush()\n"
    );
    vec![(format!("{TESTS_DIR}/test_flood.py"), text)]
}

fn write_project(root: &Utf8Path, project: &Project) -> Result<(), BenchError> {
    for (path, text) in project {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_error(format!("create {parent}")))?;
        }
        fs::write(&path, text).map_err(io_error(format!("write {path}")))?;
    }
    Ok(())
}

/// A finished child process.
#[derive(Debug)]
struct Finished {
    elapsed: Duration,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The highest `VmHWM` seen, in KiB, when memory was watched.
    peak_kib: Option<u64>,
}

impl Finished {
    /// The exit code, or a description of the signal.
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    fn unexpected(&self, what: &str, command: &str) -> BenchError {
        BenchError::Unexpected(format!(
            "{what}: `{command}` exited with {}\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}",
            self.status,
            tail(&self.stdout),
            tail(&self.stderr)
        ))
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let start = text.len().saturating_sub(2_000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// Runs `command` to its end with both outputs collected, timing it from spawn to exit, and
/// with `watch_memory` polling its peak resident set (the process's own, not its children's).
fn execute(command: &mut Command, watch_memory: bool) -> Result<Finished, BenchError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let described = describe(command);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(io_error(format!("start `{described}`")))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let mut peak_kib = None;
    let status = if watch_memory {
        loop {
            // VmHWM only rises; a read after the process has exited finds none.
            peak_kib = peak_kib.max(vm_hwm_kib(child.id()));
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => thread::sleep(MEMORY_POLL),
                Err(e) => return Err(io_error(format!("wait for `{described}`"))(e)),
            }
        }
    } else {
        child
            .wait()
            .map_err(io_error(format!("wait for `{described}`")))?
    };
    let elapsed = started.elapsed();
    let joined = |handle: thread::JoinHandle<io::Result<Vec<u8>>>| {
        handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reader thread panicked")))
            .map_err(io_error(format!("read the output of `{described}`")))
    };
    Ok(Finished {
        elapsed,
        status,
        stdout: joined(out)?,
        stderr: joined(err)?,
        peak_kib,
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_end(&mut bytes)?;
        }
        Ok(bytes)
    })
}

/// The peak resident set of process `pid` so far, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    parse_vm_hwm(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
}

/// Warden's exact pytest command line, from the `pytest started` event of its debug log.
fn logged_argv(stderr: &str) -> Option<Vec<String>> {
    let line = stderr
        .lines()
        .find(|line| line.contains("pytest started"))?;
    let (_, list) = line.split_once("argv=")?;
    // The log writes the list as Rust's debug format, which for these paths is JSON.
    serde_json::Deserializer::from_str(list)
        .into_iter::<Vec<String>>()
        .next()?
        .ok()
}

/// Warden's command line for a bare run in `bare_root` that writes its results records to
/// `records`: the same interpreter, program and options, with the project directory swapped.
fn bare_argv(
    warden_argv: &[String],
    warden_root: &Utf8Path,
    bare_root: &Utf8Path,
    records: &Utf8Path,
) -> Result<Vec<String>, BenchError> {
    let shaped = warden_argv.len() >= 5
        && warden_argv[1] == "-P"
        && warden_argv[2] == "-c"
        && !warden_argv[4].starts_with('-');
    if !shaped {
        return Err(BenchError::Unexpected(format!(
            "Warden's pytest command line does not have the expected shape (interpreter, \
             `-P -c BOOTSTRAP RECORDS`, pytest's arguments): {warden_argv:?}"
        )));
    }
    Ok(warden_argv
        .iter()
        .enumerate()
        .map(|(at, arg)| {
            if at == 4 {
                records.to_string()
            } else {
                arg.replace(warden_root.as_str(), bare_root.as_str())
            }
        })
        .collect())
}

/// `argv` as a person would read it: `python` for the interpreter, `<bootstrap.py>` for the
/// program Warden runs (crates/executor/src/bootstrap.py), `<project>` and `<records.jsonl>`
/// for this run's temporary paths.
fn shown(argv: &[String], root: &Utf8Path, records: &Utf8Path) -> String {
    let mut words = vec!["python".to_owned()];
    words.extend(argv.iter().enumerate().skip(1).map(|(at, arg)| {
        if at == 3 && argv[2] == "-c" {
            "<bootstrap.py>".to_owned()
        } else {
            arg.replace(records.as_str(), "<records.jsonl>")
                .replace(root.as_str(), "<project>")
        }
    }));
    words.join(" ")
}

/// Python's switches that Warden may set for a run, removed from the default environment.
const WARDEN_PYTHON_ENV: [&str; 3] = [
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPYCACHEPREFIX",
    "PYTHONUNBUFFERED",
];

/// Python's switches as `warden verify` sets them in `root`: bytecode in Warden's cache under
/// the root (`Mission::runner_for`: `.warden/pycache`, Python's tree in its `bytecode`
/// directory), never in the tree, and unbuffered output (what a test printed before a kill is
/// not lost).
fn warden_python_env(root: &Utf8Path) -> [(&'static str, String); 2] {
    [
        (
            "PYTHONPYCACHEPREFIX",
            root.join(".warden/pycache/bytecode").into_string(),
        ),
        ("PYTHONUNBUFFERED", "1".to_owned()),
    ]
}

/// The environment of a bare pytest run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BareEnv {
    /// The caller's, without [`WARDEN_PYTHON_ENV`]: pytest as a person runs it, writing and
    /// reusing bytecode caches.
    Default,
    /// Warden's: the base variables Warden passes, plus [`warden_python_env`] (the cache as a
    /// plain prefix, without Warden's checks of it). The difference from Warden is then
    /// Warden's own work alone.
    Warden,
}

/// The programs compared.
struct Contenders<'a> {
    workspace: &'a Utf8Path,
    warden: &'a Utf8Path,
    python: &'a Utf8Path,
}

/// The result of an overhead comparison.
#[derive(Debug, Clone)]
struct Overhead {
    warden: Vec<Duration>,
    /// Bare pytest in the default environment.
    bare: Vec<Duration>,
    /// Bare pytest in Warden's environment.
    bare_same_env: Vec<Duration>,
    /// Bare pytest again, as `bare` on a copy of its own: the control. What separates it from
    /// `bare` is the machine's noise alone, so its ratio says what the rounds can resolve.
    control: Vec<Duration>,
    /// The bare command line (interpreter first).
    bare_argv: Vec<String>,
    /// The bare command as shown in the table, without this run's temporary paths.
    bare_shown: String,
    /// The standard output of the last bare run.
    bare_stdout: Vec<u8>,
}

/// Peak memory while a test prints `mib` MiB.
#[derive(Debug, Clone)]
struct Memory {
    mib: u64,
    warden_kib: Vec<u64>,
    naive_kib: Vec<u64>,
}

/// Kill latency rounds.
#[derive(Debug, Clone)]
struct Kill {
    /// Time from the deadline to `verify` returning, per round.
    latency: Vec<Duration>,
    /// Processes of the runs still alive after `verify` returned, over all rounds.
    left: usize,
}

impl Contenders<'_> {
    fn warden(&self, root: &Utf8Path) -> Command {
        let mut command = Command::new(self.warden);
        command
            .arg("--root")
            .arg(root)
            .env("WARDEN_PYTHON", self.python);
        command
    }

    /// `warden verify` of the whole test directory, without a ledger, as JSON.
    fn verify(&self, root: &Utf8Path) -> Command {
        let mut command = self.warden(root);
        command.args(["verify", TESTS_DIR, "--no-ledger", "--json"]);
        command
    }

    /// Runs `warden verify` once and checks that `passed` tests passed.
    fn run_warden(
        &self,
        root: &Utf8Path,
        passed: u64,
        watch_memory: bool,
    ) -> Result<Finished, BenchError> {
        let mut command = self.verify(root);
        let described = describe(&command);
        let done = execute(&mut command, watch_memory)?;
        let report: serde_json::Value = serde_json::from_slice(&done.stdout)
            .map_err(|_| done.unexpected("no JSON report", &described))?;
        if done.code() != Some(0) || report["counts"]["passed"] != passed {
            return Err(done.unexpected(&format!("expected {passed} passed tests"), &described));
        }
        Ok(done)
    }

    /// Warden's pytest command line on `root`, from one `verify -vv` (which also warms up).
    fn warden_argv(&self, root: &Utf8Path, passed: u64) -> Result<Vec<String>, BenchError> {
        let mut command = self.warden(root);
        command.args(["-vv", "verify", TESTS_DIR, "--no-ledger", "--json"]);
        let described = describe(&command);
        let done = execute(&mut command, false)?;
        if done.code() != Some(0) {
            return Err(done.unexpected(&format!("expected {passed} passed tests"), &described));
        }
        logged_argv(&String::from_utf8_lossy(&done.stderr)).ok_or_else(|| {
            done.unexpected(
                "no `pytest started ... argv=[...]` event in Warden's debug log",
                &described,
            )
        })
    }

    fn run_bare(
        &self,
        argv: &[String],
        root: &Utf8Path,
        env: BareEnv,
    ) -> Result<Finished, BenchError> {
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).current_dir(root);
        match env {
            BareEnv::Default => {
                for name in WARDEN_PYTHON_ENV {
                    command.env_remove(name);
                }
            }
            BareEnv::Warden => {
                command
                    .env_clear()
                    .envs(std::env::vars_os().filter(|(name, _)| {
                        name.to_str().is_some_and(|n| {
                            ["PATH", "HOME", "LANG", "TMPDIR"].contains(&n) || n.starts_with("LC_")
                        })
                    }));
                command.envs(warden_python_env(root));
            }
        }
        let described = describe(&command);
        let done = execute(&mut command, false)?;
        if done.code() != Some(0) {
            return Err(done.unexpected("bare pytest failed", &described));
        }
        Ok(done)
    }

    /// Warden against bare pytest on `project`, in rounds that rotate which goes first.
    fn overhead(
        &self,
        dir: &Utf8Path,
        name: &str,
        project: &Project,
        passed: u64,
        rounds: usize,
    ) -> Result<Overhead, BenchError> {
        // Each contender has its own copy: bytecode caches written by one must not serve another.
        let warden_root = dir.join(format!("{name}-warden"));
        let bare_root = dir.join(format!("{name}-bare"));
        let same_env_root = dir.join(format!("{name}-bare-warden-env"));
        let control_root = dir.join(format!("{name}-bare-control"));
        for root in [&warden_root, &bare_root, &same_env_root, &control_root] {
            write_project(root, project)?;
        }
        let report = dir.join(format!("{name}-bare-records.jsonl"));
        let warden_argv = self.warden_argv(&warden_root, passed)?;
        let argv = bare_argv(&warden_argv, &warden_root, &bare_root, &report)?;
        let same_env_argv = bare_argv(&warden_argv, &warden_root, &same_env_root, &report)?;
        let control_argv = bare_argv(&warden_argv, &warden_root, &control_root, &report)?;
        // Warm-up: the default-environment copy gets its bytecode caches here.
        let mut bare_stdout = self.run_bare(&argv, &bare_root, BareEnv::Default)?.stdout;
        self.run_bare(&same_env_argv, &same_env_root, BareEnv::Warden)?;
        self.run_bare(&control_argv, &control_root, BareEnv::Default)?;
        let mut result = Overhead {
            warden: Vec::new(),
            bare: Vec::new(),
            bare_same_env: Vec::new(),
            control: Vec::new(),
            bare_shown: shown(&argv, &bare_root, &report),
            bare_argv: argv,
            bare_stdout: Vec::new(),
        };
        for round in 0..rounds {
            for turn in 0..4 {
                match (round + turn) % 4 {
                    0 => {
                        let done = self.run_warden(&warden_root, passed, false)?;
                        result.warden.push(done.elapsed);
                    }
                    1 => {
                        let done =
                            self.run_bare(&result.bare_argv, &bare_root, BareEnv::Default)?;
                        result.bare.push(done.elapsed);
                        bare_stdout = done.stdout;
                    }
                    2 => {
                        let done =
                            self.run_bare(&same_env_argv, &same_env_root, BareEnv::Warden)?;
                        result.bare_same_env.push(done.elapsed);
                    }
                    _ => {
                        let done = self.run_bare(&control_argv, &control_root, BareEnv::Default)?;
                        result.control.push(done.elapsed);
                    }
                }
            }
        }
        result.bare_stdout = bare_stdout;
        Ok(result)
    }

    /// Peak memory of Warden and of the naive runner while a test prints `mib` MiB.
    fn memory(&self, dir: &Utf8Path, mib: u64, rounds: usize) -> Result<Memory, BenchError> {
        let root = dir.join(format!("flood-{mib}"));
        write_project(&root, &flood(mib))?;
        let argv = self.warden_argv(&root, 1)?;
        let report = dir.join(format!("flood-{mib}-naive-records.jsonl"));
        // Everything after the interpreter: `-P -c BOOTSTRAP` and pytest's arguments.
        let pytest_args = bare_argv(&argv, &root, &root, &report)?.split_off(1);
        let naive_script = self.workspace.join("xtask/bench/naive_runner.py");
        let mut result = Memory {
            mib,
            warden_kib: Vec::new(),
            naive_kib: Vec::new(),
        };
        for round in 0..rounds {
            for warden_turn in [round % 2 == 0, round % 2 != 0] {
                if warden_turn {
                    let done = self.run_warden(&root, 1, true)?;
                    result.warden_kib.push(done.peak_kib.unwrap_or(0));
                } else {
                    let mut command = Command::new(self.python);
                    command.arg(&naive_script).arg(&root).args(&pytest_args);
                    let described = describe(&command);
                    let done = execute(&mut command, true)?;
                    if done.code() != Some(0) {
                        return Err(done.unexpected("the naive runner failed", &described));
                    }
                    result.naive_kib.push(done.peak_kib.unwrap_or(0));
                }
            }
        }
        Ok(result)
    }

    /// Time from the deadline to `verify` returning on the hang fixture, and leftovers.
    fn kill_latency(&self, dir: &Utf8Path, rounds: usize) -> Result<Kill, BenchError> {
        let root = dir.join("hang");
        let fixture = self
            .workspace
            .join("tests/fixtures/hang")
            .join(TESTS_DIR)
            .join("test_hang.py");
        let text = fs::read_to_string(&fixture).map_err(io_error(format!("read {fixture}")))?;
        write_project(&root, &vec![(format!("{TESTS_DIR}/test_hang.py"), text)])?;
        let policy = dir.join("grace-policy.toml");
        fs::write(&policy, grace_policy(KILL_GRACE_SECS))
            .map_err(io_error(format!("write {policy}")))?;
        let timeout = Duration::from_secs(KILL_TIMEOUT_SECS);
        let mut result = Kill {
            latency: Vec::new(),
            left: 0,
        };
        for round in 0..=rounds {
            let mut command = self.warden(&root);
            command
                .arg("--policy")
                .arg(&policy)
                .args([
                    "verify",
                    TESTS_DIR,
                    "--no-ledger",
                    "--json",
                    "--retries",
                    "0",
                ])
                .arg(format!("--timeout={KILL_TIMEOUT_SECS}"));
            let described = describe(&command);
            let done = execute(&mut command, false)?;
            // Counted at once: what is alive now outlived `verify`.
            result.left += kill_leftovers(&root);
            let report: serde_json::Value = serde_json::from_slice(&done.stdout)
                .map_err(|_| done.unexpected("no JSON report", &described))?;
            if done.code() != Some(4) || report["status"] != "timeout" {
                return Err(done.unexpected("expected a timeout (exit 4)", &described));
            }
            if round > 0 {
                result.latency.push(done.elapsed.saturating_sub(timeout));
            }
        }
        Ok(result)
    }
}

/// A policy that allows the test directory and gives `grace` seconds between SIGTERM and
/// SIGKILL.
fn grace_policy(grace: u64) -> String {
    format!(
        "version = 1\n\n[limits]\ngrace_secs = {grace}\n\n[[rule]]\nid = \"pytest-runtime-tests\"\n\
         effect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"{TESTS_DIR}\"]\n"
    )
}

/// Kills, and counts, the processes whose command line mentions `root`.
fn kill_leftovers(root: &Utf8Path) -> usize {
    let me = std::process::id().to_string();
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut found = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if pid != me && String::from_utf8_lossy(&cmdline).contains(root.as_str()) {
            found += 1;
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    found
}

/// Runs one criterion bench, with its results under `home`.
fn criterion(
    root: &Utf8Path,
    home: &Utf8Path,
    package: &str,
    bench: &str,
    filter: &str,
    env: &[(&str, OsString)],
    plan: Plan,
) -> Result<(), BenchError> {
    let mut command = cargo(root);
    command
        .args([
            "bench",
            "--package",
            package,
            "--bench",
            bench,
            "--",
            filter,
        ])
        .args(["--warm-up-time", "2", "--measurement-time"])
        .arg(plan.criterion_secs.to_string())
        .env("CRITERION_HOME", home)
        .envs(env.iter().map(|(k, v)| (k, v)));
    let described = describe(&command);
    let status = command
        .status()
        .map_err(io_error(format!("run `{described}`")))?;
    if !status.success() {
        return Err(BenchError::Command {
            command: described,
            problem: format!("exited with {status}"),
        });
    }
    Ok(())
}

/// Criterion's estimate of one benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    /// Median time per iteration and its confidence interval, in nanoseconds.
    median_ns: f64,
    low_ns: f64,
    high_ns: f64,
    /// Bytes or elements per iteration, when the bench declared them.
    per_iteration: Option<f64>,
}

impl Estimate {
    /// Reads `<home>/<id>/new/{estimates,benchmark}.json`.
    fn read(home: &Utf8Path, id: &str) -> Result<Estimate, BenchError> {
        let read = |file: &str| -> Result<serde_json::Value, BenchError> {
            let path = home.join(id).join("new").join(file);
            let text = fs::read_to_string(&path).map_err(io_error(format!("read {path}")))?;
            serde_json::from_str(&text)
                .map_err(|e| BenchError::Unexpected(format!("{path} is not criterion's JSON: {e}")))
        };
        Estimate::from_json(&read("estimates.json")?, &read("benchmark.json")?).ok_or_else(|| {
            BenchError::Unexpected(format!(
                "criterion's files for `{id}` under {home} lack the median estimate"
            ))
        })
    }

    fn from_json(estimates: &serde_json::Value, benchmark: &serde_json::Value) -> Option<Self> {
        let median = &estimates["median"];
        let interval = &median["confidence_interval"];
        let throughput = &benchmark["throughput"];
        Some(Estimate {
            median_ns: median["point_estimate"].as_f64()?,
            low_ns: interval["lower_bound"].as_f64()?,
            high_ns: interval["upper_bound"].as_f64()?,
            per_iteration: throughput["Bytes"]
                .as_f64()
                .or_else(|| throughput["Elements"].as_f64()),
        })
    }

    /// Units (bytes, elements) per second at the median, and at the interval's ends.
    fn rate(&self) -> Option<(f64, f64, f64)> {
        let per = self.per_iteration?;
        let rate = |ns: f64| per / (ns * 1e-9);
        Some((rate(self.median_ns), rate(self.high_ns), rate(self.low_ns)))
    }
}

/// The parser beside its floors.
#[derive(Debug, Clone, Copy)]
struct Parser {
    parse: Estimate,
    memchr_floor: Estimate,
    std_floor: Estimate,
    recorded_bytes: u64,
}

fn parser_bench(
    root: &Utf8Path,
    home: &Utf8Path,
    stream: &Utf8Path,
    plan: Plan,
) -> Result<Parser, BenchError> {
    let env = [
        ("WARDEN_BENCH_STREAM", OsString::from(stream.as_str())),
        (
            "WARDEN_BENCH_STREAM_MIB",
            OsString::from(STREAM_MIB.to_string()),
        ),
    ];
    criterion(
        root,
        home,
        "warden-executor",
        "line_parser",
        "stream_recorded",
        &env,
        plan,
    )?;
    Ok(Parser {
        parse: Estimate::read(home, "stream_recorded/parse")?,
        memchr_floor: Estimate::read(home, "stream_recorded/floor_memchr_lines")?,
        std_floor: Estimate::read(home, "stream_recorded/floor_std_line_count")?,
        recorded_bytes: fs::metadata(stream)
            .map_err(io_error(format!("read {stream}")))?
            .len(),
    })
}

fn seconds(durations: &[Duration]) -> Vec<f64> {
    durations.iter().map(Duration::as_secs_f64).collect()
}

/// `1.23 s` or `456 ms`.
pub(crate) fn time(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else {
        format!("{:.0} ms", secs * 1e3)
    }
}

/// A median with its spread: `6.61 s [6.52–6.80]`.
pub(crate) fn time_with_spread(values: &[f64]) -> String {
    let (low, high) = spread(values);
    format!("{} [{}–{}]", time(median(values)), time(low), time(high))
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

fn gib_per_s(bytes_per_s: f64) -> String {
    format!("{:.2} GiB/s", bytes_per_s / f64::from(1u32 << 30))
}

fn yes(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

/// Everything measured, ready to render.
#[derive(Debug, Clone)]
struct Report {
    machine: Machine,
    many: Overhead,
    one: Overhead,
    mcp: mcp::McpOverhead,
    memory: Vec<Memory>,
    kill: Kill,
    sandbox: sandbox::Setup,
    parser: Parser,
    policy: Estimate,
    classifier: Vec<(u64, Estimate)>,
}

impl Report {
    fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Machine: {}, {} cores, Linux {}; {}; Python {}, pytest {}. Load average (1, 5, 15 \
             min) {} at the start and {} at the end: other work on the machine makes times \
             noisy. Medians of alternating rounds, spread (lowest–highest) in brackets.\n",
            m.cpu, m.cores, m.kernel, m.rustc, m.python, m.pytest, m.load_start, m.load_end
        );
        out.push_str("| Comparison | Warden | Alternative | Result | Target | Met |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        self.overhead_rows(&mut out);
        self.mcp.row(&mut out);
        self.memory_rows(&mut out);
        self.kill_row(&mut out);
        self.sandbox.row(&mut out);
        self.parser_row(&mut out);
        self.criterion_rows(&mut out);
        let _ = writeln!(
            out,
            "\nThe bare pytest command is Warden's own (from its debug log), each contender in \
             its own copy of the project: `{}`. It runs in the default environment (bytecode \
             caches written into the tree's `__pycache__` and reused, as a person runs \
             pytest) and in Warden's (the base variables, `PYTHONPYCACHEPREFIX` naming a \
             cache under `.warden/` as a plain prefix, without the checks Warden makes of it \
             before and after each run, and `PYTHONUNBUFFERED=1`). Every contender is warmed \
             up once, so each round finds its bytecode cached. The control is the default \
             environment's command again, on a copy of its own. Overhead intervals are 95 % \
             intervals of the median per-round ratio or difference (order statistics); a \
             target is met when the whole interval is within it. The naive runner is `xtask/bench/naive_runner.py` \
             (`subprocess.run(capture_output=True)`, then the last 50 KiB kept). The parser's \
             floors walk the same bytes: every line found with `memchr` (SIMD), and \
             `split(|b| *b == b'\\n').count()` from the standard library. Reproduce with \
             `cargo xtask bench`.",
            self.one.bare_shown
        );
        out
    }

    fn overhead_rows(&self, out: &mut String) {
        for (label, overhead, many) in [
            ("2,000 passing tests", &self.many, true),
            ("1 passing test", &self.one, false),
        ] {
            let warden = seconds(&overhead.warden);
            let bare = seconds(&overhead.bare);
            let same_env = seconds(&overhead.bare_same_env);
            let control = seconds(&overhead.control);
            // Paired by round, so that a slow moment weighs on both sides of one comparison;
            // the large run is compared by ratio, the small one (a fixed cost) by difference.
            let paired = |a: &[f64], b: &[f64]| -> Vec<f64> {
                a.iter()
                    .zip(b)
                    .map(|(a, b)| if many { a / b } else { (a - b) * 1e3 })
                    .collect()
            };
            let show = |v: f64| {
                if many {
                    format!("× {v:.3}")
                } else {
                    format!("{v:+.1} ms")
                }
            };
            let with_interval = |values: &[f64]| match median_interval(values) {
                Some(Interval { low, high, .. }) => format!(
                    "{} (95 % interval {} to {})",
                    show(median(values)),
                    show(low),
                    show(high)
                ),
                None => format!(
                    "{} (too few rounds for a 95 % interval)",
                    show(median(values))
                ),
            };
            let against_bare = paired(&warden, &bare);
            let (target, limit) = if many {
                ("≤ × 1.03", 1.03)
            } else {
                ("≤ +15 ms", 15.0)
            };
            let verdict = Verdict::of(median_interval(&against_bare), limit);
            let _ = writeln!(
                out,
                "| Overhead, {label} ({} rounds) | {} | bare pytest, same flags: {}; in \
                 Warden's environment: {}; bare pytest again on its own copy (the control): {} \
                 | {}, median of per-round {}; {} against the same environment; the control \
                 against bare pytest: {} | {target} | {} |",
                warden.len(),
                time_with_spread(&warden),
                time_with_spread(&bare),
                time_with_spread(&same_env),
                time_with_spread(&control),
                with_interval(&against_bare),
                if many { "ratios" } else { "differences" },
                show(median(&paired(&warden, &same_env))),
                with_interval(&paired(&control, &bare)),
                verdict.cell()
            );
        }
    }

    fn memory_rows(&self, out: &mut String) {
        let peaks: Vec<f64> = self
            .memory
            .iter()
            .map(|row| median(&row.warden_kib.iter().map(|k| *k as f64).collect::<Vec<_>>()))
            .collect();
        let lowest = peaks.iter().copied().fold(f64::INFINITY, f64::min);
        for (row, peak) in self.memory.iter().zip(&peaks) {
            let naive = median(&row.naive_kib.iter().map(|k| *k as f64).collect::<Vec<_>>());
            let growth = peak - lowest;
            let met = *peak <= 16.0 * 1024.0 && growth <= 1024.0;
            let _ = writeln!(
                out,
                "| Peak RSS of the runner, a test prints {} MiB ({} rounds) | {} | naive \
                 runner: {} | {:.1}× less; +{} over the smallest | ≤ 16 MiB, flat | {} |",
                row.mib,
                row.warden_kib.len(),
                mib(*peak),
                mib(naive),
                naive / peak,
                mib(growth),
                yes(met)
            );
        }
    }

    fn kill_row(&self, out: &mut String) {
        let latency = seconds(&self.kill.latency);
        let grace = KILL_GRACE_SECS as f64;
        let worst = spread(&latency).1;
        let met = worst <= grace + 0.1 && self.kill.left == 0;
        let _ = writeln!(
            out,
            "| Kill latency: a test ignores SIGTERM, a grandchild holds the pipes; timeout \
             {KILL_TIMEOUT_SECS} s, grace {KILL_GRACE_SECS} s ({} rounds after a warm-up) | {} after the \
             deadline; {} processes left | — | grace {:+.0} ms (worst round) | ≤ grace + 100 \
             ms, none left | {} |",
            latency.len(),
            time_with_spread(&latency),
            self.kill.left,
            (worst - grace) * 1e3,
            yes(met)
        );
    }

    fn parser_row(&self, out: &mut String) {
        let p = &self.parser;
        let rate = |e: &Estimate| e.rate().map_or(f64::NAN, |(median, _, _)| median);
        let (parse, slow, fast) = p.parse.rate().unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        let memchr = rate(&p.memchr_floor);
        let std = rate(&p.std_floor);
        let gigabyte = parse >= 1e9;
        let share_memchr = parse / memchr;
        let share_std = parse / std;
        let _ = writeln!(
            out,
            "| Parser: the recorded `-v -ra` output of the 2,000-test run ({} KiB) repeated to \
             {STREAM_MIB} MiB | {} [{}–{}] | floors: `memchr` line walk {}, std line count {} \
             | {:.0}% of the `memchr` floor, {:.0}% of the std floor | ≥ 1 GB/s and ≥ 30% of \
             the floor | {} (1 GB/s); {} (`memchr` floor); {} (std floor) |",
            p.recorded_bytes / 1024,
            gib_per_s(parse),
            gib_per_s(slow),
            gib_per_s(fast),
            gib_per_s(memchr),
            gib_per_s(std),
            share_memchr * 100.0,
            share_std * 100.0,
            yes(gigabyte),
            yes(share_memchr >= 0.3),
            yes(share_std >= 0.3),
        );
    }

    fn criterion_rows(&self, out: &mut String) {
        if let Some((rate, low, high)) = self.policy.rate() {
            let _ = writeln!(
                out,
                "| Policy: 6 allowed and 6 denied requests on a real tree (criterion) | {:.0} \
                 decisions/s [{:.0}–{:.0}] | — | {:.1} µs per decision | — | — |",
                rate,
                low,
                high,
                1e6 / rate
            );
        }
        let per_run: Vec<f64> = self
            .classifier
            .iter()
            .map(|(runs, e)| e.median_ns / *runs as f64)
            .collect();
        let (low, high) = spread(&per_run);
        let linear = high <= 1.5 * low;
        let times: Vec<String> = self
            .classifier
            .iter()
            .map(|(_, e)| time(e.median_ns * 1e-9))
            .collect();
        let sizes: Vec<String> = self
            .classifier
            .iter()
            .map(|(runs, _)| match runs {
                r if r % 1_000_000 == 0 => format!("{}M", r / 1_000_000),
                r => format!("{}k", r / 1000),
            })
            .collect();
        let per: Vec<String> = per_run.iter().map(|ns| format!("{ns:.0}")).collect();
        let _ = writeln!(
            out,
            "| Classifier: {} history runs of 20 results (criterion) | {} | — | {} ns per run | \
             linear | {} |",
            sizes.join(" / "),
            times.join(" / "),
            per.join(" / "),
            yes(linear)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_a_person_writes_them() {
        assert_eq!(time(1.234), "1.23 s");
        assert_eq!(time(0.0456), "46 ms");
    }

    #[test]
    fn the_suites_have_the_tests_they_claim() {
        let many = suite(20, 50, 50);
        assert_eq!(many.len(), 20);
        let plain: usize = many
            .iter()
            .map(|(_, t)| t.matches("def test_case_").count())
            .sum();
        assert_eq!(plain, 1_000);
        assert!(many.iter().all(|(_, t)| t.contains("range(50)")));
        let one = suite(1, 1, 0);
        assert_eq!(one[0].1.matches("def test_").count(), 1);
        assert!(one[0].0.starts_with("runtime/tests/"));
        assert!(flood(20)[0].1.contains("range(20)"));
    }

    #[test]
    fn peak_memory_is_read_from_proc_status() {
        let status = "Name:\twarden\nVmPeak:\t  20000 kB\nVmHWM:\t    8123 kB\nVmRSS:\t 8000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(8123));
        assert_eq!(parse_vm_hwm("Name:\tzombie\nState:\tZ (zombie)\n"), None);
        // This very process has a peak resident set.
        assert!(vm_hwm_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn warden_s_command_line_comes_from_its_debug_log() {
        let log = "2026-01-01T00:00:00Z DEBUG verify{target=runtime/tests}: pytest started \
                   pid=7 argv=[\"/venv/bin/python\", \"-P\", \"-c\", \"import pytest\", \
                   \"/tmp/warden-run-x/records.jsonl\", \"--rootdir=/t/w\", \"-rA\", \"--\", \
                   \"runtime/tests\"] deadline=300s\nother line\n";
        let argv = logged_argv(log).unwrap();
        assert_eq!(argv.len(), 9);
        assert_eq!(argv[4], "/tmp/warden-run-x/records.jsonl");
        assert_eq!(logged_argv("no such event"), None);

        let bare = bare_argv(
            &argv,
            Utf8Path::new("/t/w"),
            Utf8Path::new("/t/b"),
            Utf8Path::new("/t/r.jsonl"),
        )
        .unwrap();
        assert_eq!(
            bare,
            [
                "/venv/bin/python",
                "-P",
                "-c",
                "import pytest",
                "/t/r.jsonl",
                "--rootdir=/t/b",
                "-rA",
                "--",
                "runtime/tests"
            ]
        );
        assert_eq!(
            shown(&bare, "/t/b".into(), "/t/r.jsonl".into()),
            "python -P -c <bootstrap.py> <records.jsonl> --rootdir=<project> -rA -- runtime/tests"
        );
        let mut no_records = argv.clone();
        no_records.remove(4);
        no_records.truncate(4);
        assert!(bare_argv(&no_records, "/a".into(), "/b".into(), "/r".into()).is_err());
        let mut module = argv;
        module[2] = "-m".into();
        assert!(bare_argv(&module, "/a".into(), "/b".into(), "/r".into()).is_err());
    }

    #[test]
    fn criterion_estimates_give_rates() {
        let estimates = serde_json::json!({
            "median": {"point_estimate": 2e9, "confidence_interval": {"lower_bound": 1e9, "upper_bound": 4e9}}
        });
        let benchmark = serde_json::json!({"throughput": {"Bytes": 4e9}});
        let e = Estimate::from_json(&estimates, &benchmark).unwrap();
        assert_eq!(e.rate(), Some((2e9, 1e9, 4e9)));
        let elements = serde_json::json!({"throughput": {"Elements": 10}});
        assert_eq!(
            Estimate::from_json(&estimates, &elements)
                .unwrap()
                .per_iteration,
            Some(10.0)
        );
        assert_eq!(
            Estimate::from_json(&serde_json::json!({}), &benchmark),
            None
        );
    }

    fn sample_report(warden_ms: f64, peak_200_kib: u64) -> Report {
        let ms = |v: f64| Duration::from_secs_f64(v / 1e3);
        let estimate = |ns: f64, per: f64| Estimate {
            median_ns: ns,
            low_ns: ns * 0.9,
            high_ns: ns * 1.1,
            per_iteration: Some(per),
        };
        let overhead = |warden: f64, bare: f64| Overhead {
            warden: vec![ms(warden); 9],
            bare: vec![ms(bare); 9],
            bare_same_env: vec![ms(bare * 1.02); 9],
            control: vec![ms(bare); 9],
            bare_argv: vec!["/venv/bin/python".into(), "-m".into(), "pytest".into()],
            bare_shown: "python -m pytest".into(),
            bare_stdout: Vec::new(),
        };
        Report {
            machine: Machine {
                cpu: "Test CPU".into(),
                cores: 2,
                kernel: "6.1".into(),
                rustc: "rustc 1.95.0".into(),
                python: "3.11.7".into(),
                pytest: "9.2.0".into(),
                load_start: "0.10 0.20 0.30".into(),
                load_end: "0.40 0.50 0.60".into(),
            },
            many: overhead(6000.0 * warden_ms / 300.0, 6000.0),
            one: overhead(warden_ms, 300.0),
            mcp: mcp::McpOverhead {
                mcp: vec![ms(warden_ms - 40.0); 3],
                cli: vec![ms(warden_ms), ms(warden_ms + 1.0), ms(warden_ms - 1.0)],
                ping: vec![ms(0.12); 3],
                mcp_outside: vec![0.004; 3],
                cli_outside: vec![0.012, 0.013, 0.011],
            },
            memory: FLOOD_MIB
                .iter()
                .map(|&mib| Memory {
                    mib,
                    warden_kib: vec![if mib == 200 { peak_200_kib } else { 8192 }],
                    naive_kib: vec![mib * 2048],
                })
                .collect(),
            kill: Kill {
                latency: vec![ms(1040.0)],
                left: 0,
            },
            sandbox: sandbox::Setup {
                bare: vec![ms(1.0), ms(1.5), ms(1.0)],
                confined: vec![ms(7.0), ms(7.5), ms(30.0)],
            },
            parser: Parser {
                parse: estimate(1e8, 128e6),
                memchr_floor: estimate(2e7, 128e6),
                std_floor: estimate(5e7, 128e6),
                recorded_bytes: 267_000,
            },
            policy: estimate(1.2e5, 12.0),
            classifier: vec![
                (10_000, estimate(3e6, 1e4)),
                (100_000, estimate(3e7, 1e5)),
                (1_000_000, estimate(3.1e8, 1e6)),
            ],
        }
    }

    #[test]
    fn the_table_says_which_targets_are_met() {
        let good = sample_report(310.0, 8192).markdown();
        assert!(good.contains("Test CPU, 2 cores, Linux 6.1; rustc 1.95.0; Python 3.11.7"));
        assert!(
            good.contains(
                "| × 1.033 (95 % interval × 1.033 to × 1.033), median of per-round ratios; \
                 × 1.013 against the same environment; the control against bare pytest: × 1.000 \
                 (95 % interval × 1.000 to × 1.000) | ≤ × 1.03 | **no** |"
            ),
            "{good}"
        );
        assert!(
            good.contains(
                "| +10.0 ms (95 % interval +10.0 ms to +10.0 ms), median of per-round \
                 differences; +4.0 ms against the same environment; the control against bare \
                 pytest: +0.0 ms (95 % interval +0.0 ms to +0.0 ms) | ≤ +15 ms | yes |"
            ),
            "{good}"
        );
        assert!(
            good.contains("| 8.0 MiB | naive runner: 400.0 MiB |"),
            "{good}"
        );
        assert!(good.contains("grace +40 ms (worst round)"), "{good}");
        assert!(good.contains("| 1.19 GiB/s"), "{good}");
        assert!(
            good.contains("20% of the `memchr` floor, 50% of the std floor"),
            "{good}"
        );
        assert!(
            good.contains("yes (1 GB/s); **no** (`memchr` floor); yes (std floor)"),
            "{good}"
        );
        assert!(good.contains("100000 decisions/s"), "{good}");
        assert!(
            good.contains("300 / 300 / 310 ns per run | linear | yes |"),
            "{good}"
        );
        assert!(good.contains("`python -m pytest`"), "{good}");
        assert!(
            good.contains(
                "| -8.0 ms per call outside the verification itself (MCP 4.0 ms, command line \
                 12.0 ms; whole calls -40.0 ms), medians of per-round differences; a `ping` \
                 round trip 0.12 ms | ≤ +5 ms | yes |"
            ),
            "{good}"
        );
        assert!(
            good.contains(
                "| 7.50 ms [7.00–30.00] | 1.00 ms [1.00–1.50] | +6.00 ms per run (median of \
                 paired differences) | ≤ 10 ms | yes |"
            ),
            "{good}"
        );

        let bad = sample_report(320.0, 20 * 1024).markdown();
        assert!(bad.contains("| +20.0 ms (95 % interval +20.0 ms to +20.0 ms), median"));
        assert!(bad.contains(" | ≤ +15 ms | **no** |"), "{bad}");
        assert!(bad.contains("| 20.0 MiB | naive runner: 400.0 MiB |"));
        assert!(
            bad.contains("+12.0 MiB over the smallest | ≤ 16 MiB, flat | **no** |"),
            "{bad}"
        );
    }

    #[test]
    fn rounds_that_straddle_the_target_leave_it_unresolved() {
        let mut report = sample_report(310.0, 8192);
        // One test: differences from -5 ms to +35 ms, median +15 ms; with 9 rounds the 95 %
        // interval runs from the 2nd smallest to the 2nd largest.
        report.one.warden = (0..9)
            .map(|i| Duration::from_secs_f64((295.0 + 5.0 * f64::from(i)) / 1e3))
            .collect();
        report.one.bare = vec![Duration::from_millis(300); 9];
        let table = report.markdown();
        assert!(
            table.contains(
                "| +15.0 ms (95 % interval +0.0 ms to +30.0 ms), median of per-round differences"
            ),
            "{table}"
        );
        assert!(
            table.contains("| ≤ +15 ms | not resolved: the 95 % interval spans the target |"),
            "{table}"
        );
        report.one.warden.truncate(5);
        assert!(
            report
                .markdown()
                .contains("(too few rounds for a 95 % interval)")
        );
    }
}
