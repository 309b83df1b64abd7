//! Running one [`Invocation`]: spawn, stream, stop at the deadline, clean up, assemble evidence.
//!
//! Timeline of a run:
//! 1. Spawn the interpreter as the leader of a new process group (`process_group(0)`, set by
//!    the spawn itself, not a `pre_exec` hook), stdin from `/dev/null`, both outputs piped,
//!    once the [`StartGate`] is open. A confined run spawns the sandbox's helper before the
//!    gate opens, so that the sandbox is set up meanwhile; the helper waits for a word on its
//!    stdin (a pipe) before it starts the interpreter. The deadline counts from the gate.
//! 2. Read both pipes concurrently in fixed-size chunks into bounded captures and the
//!    streaming parsers, while waiting for the leader to exit or the deadline to pass.
//! 3. At the deadline: SIGINT to the group (pytest then reports what ran before the hang and
//!    writes its report), SIGTERM three quarters of the way through the grace period, SIGKILL to the group at
//!    its end, and wait (bounded) for the leader.
//! 4. Once the leader has exited, however: anything still alive in the group, or marked as
//!    the run's outside it, is killed and reported as leaked; the pipes get a short deadline to
//!    reach end-of-file, after which they are abandoned (a process that escaped Warden holds
//!    them).
//! 5. Read the results records from the private temporary directory (removed on return) and
//!    assemble the evidence.
//!
//! Every wait is bounded: the run returns at most about `deadline + grace +` [`KILL_WAIT`] `+`
//! [`CLEANUP_BUDGET`] `+` [`DRAIN_DEADLINE`] after it started, whatever the processes do.
//! Dropping the future at any await point drops the [`ProcessGroup`] guard, which SIGKILLs the
//! group and its escaped members.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use camino::Utf8PathBuf;
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};

use crate::bytecode::Lease;
use crate::capture::Capture;
use crate::confine::{self, Confinement, SandboxPlan, refusal_message};
use crate::evidence::{RunEvidence, RunOutcome, millis};
use crate::gate::{StartGate, called_off};
use crate::invocation::{Invocation, SITECUSTOMIZE};
use crate::lines::{LineParser, StderrScanner};
use crate::process::{ProcessGroup, new_run_id};
use crate::progress::Progress;
use crate::records;
use crate::results::{self, Exit};
use crate::scratch::Scratch;

/// How long reading the results records may take after the run, in
/// all: far more than pytest's own reports need (a 64 MiB report reads in well under a
/// second), and a fixed bound whatever a test writes there.
pub(crate) const PARSE_DEADLINE: Duration = Duration::from_secs(5);

/// Size of each read from a pipe.
const CHUNK_BYTES: usize = 64 * 1024;

/// How long to wait for the leader after SIGKILL (it can only be slower in uninterruptible
/// sleep, e.g. on a hung network file system).
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(1);

/// Time to find and kill leftovers after the leader exited.
pub(crate) const CLEANUP_BUDGET: Duration = Duration::from_secs(1);

/// How long the pipes get to reach end-of-file once every process Warden knows of is gone.
pub(crate) const DRAIN_DEADLINE: Duration = Duration::from_millis(500);

/// One output stream's consumer: the bounded capture plus a parser.
struct Sink<P> {
    capture: Capture,
    parser: P,
}

trait Feed {
    fn feed(&mut self, bytes: &[u8]);
}

impl Feed for LineParser {
    fn feed(&mut self, bytes: &[u8]) {
        LineParser::feed(self, bytes);
    }
}

impl Feed for StderrScanner {
    fn feed(&mut self, bytes: &[u8]) {
        StderrScanner::feed(self, bytes);
    }
}

/// The run's use of the bytecode cache in `dir`, or `None` (the run then keeps its bytecode
/// in a private directory of its own) when it cannot have it; with a line for the evidence when something planted there was
/// refused.
async fn take_bytecode_cache(
    dir: Utf8PathBuf,
    root: Utf8PathBuf,
) -> (Option<Lease>, Option<String>) {
    let taken = tokio::task::spawn_blocking(move || Lease::acquire(&dir, &root)).await;
    match taken {
        Ok(Ok(lease)) => (Some(lease), None),
        Ok(Err(reason)) => {
            tracing::warn!(%reason, "running without the bytecode cache");
            let note = reason
                .is_tampering()
                .then(|| format!("{reason}; the run went ahead without it"));
            (None, note)
        }
        Err(e) => {
            tracing::warn!(error = %e, "running without the bytecode cache");
            (None, None)
        }
    }
}

/// The directory holding the run's [`SITECUSTOMIZE`]: the cache's when the run has it (the
/// same file for every run, so its bytecode is cached), else one in the run's scratch.
fn site_dir(lease: Option<&Lease>, scratch: &Scratch) -> Result<Utf8PathBuf, String> {
    match lease.and_then(Lease::site) {
        Some(dir) => Ok(dir.to_owned()),
        None => scratch.site_dir(SITECUSTOMIZE),
    }
}

/// Runs `inv` to completion and returns its evidence. Never fails: problems are evidence.
pub(crate) async fn execute(
    inv: &Invocation,
    sandbox: Option<&SandboxPlan>,
    progress: &watch::Sender<Progress>,
    gate: StartGate,
) -> RunEvidence {
    let scratch = match Scratch::new() {
        Ok(dir) => dir,
        Err(e) => {
            return RunEvidence::not_started(
                vec![inv.program()],
                inv.deadline,
                format!(
                    "could not create a private temporary directory for the results records: {e}; check TMPDIR and free space"
                ),
            );
        }
    };
    let report_path = scratch.report_path().clone();
    let argv = inv.argv(&report_path);
    if !inv.root.is_dir() {
        return RunEvidence::not_started(
            argv,
            inv.deadline,
            format!("the root {} is not a directory", inv.root),
        );
    }
    let (lease, cache_problem) = match &inv.bytecode_cache {
        Some(dir) => take_bytecode_cache(dir.clone(), inv.root.clone()).await,
        None => (None, None),
    };
    let confinement = match sandbox {
        // Inside the sandbox a missing interpreter would only be the helper's exit code: say
        // it the way an unconfined spawn does.
        Some(_) if confine::resolve_program(&inv.program()).is_none_or(|p| !p.is_file()) => {
            let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
            return RunEvidence::not_started(
                argv,
                inv.deadline,
                spawn_failure(&inv.python, &missing),
            );
        }
        Some(plan) => {
            let report_dir = report_path.parent().unwrap_or(&inv.root).as_std_path();
            match Confinement::prepare(plan, inv, report_dir) {
                Ok(c) => Some(c),
                Err(e) => return RunEvidence::not_started(argv, inv.deadline, e),
            }
        }
        None => None,
    };
    let bytecode_prefix = match lease.as_ref().map(Lease::prefix) {
        Some(prefix) => prefix.to_owned(),
        None => match scratch.bytecode_prefix() {
            Ok(prefix) => prefix,
            Err(e) => return RunEvidence::not_started(argv, inv.deadline, e),
        },
    };
    // A confined run cannot write the cache: it notes the root's sources it compiled, for
    // Warden to compile after it (see `crate::precompile`).
    let notes = match (&lease, &confinement) {
        (Some(_), Some(_)) => match scratch.wanted_path() {
            Ok(path) => Some(path),
            Err(e) => return RunEvidence::not_started(argv, inv.deadline, e),
        },
        _ => None,
    };
    let site_dir = match site_dir(lease.as_ref(), &scratch) {
        Ok(dir) => dir,
        Err(e) => return RunEvidence::not_started(argv, inv.deadline, e),
    };
    let run_id = new_run_id();
    let mut command = match &confinement {
        Some(c) => match c.command(&argv, true) {
            Ok((program, args)) => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
            Err(e) => return RunEvidence::not_started(argv, inv.deadline, e),
        },
        None => {
            let mut command = Command::new(&argv[0]);
            command.args(&argv[1..]);
            command
        }
    };
    command
        .current_dir(&inv.root)
        .env_clear()
        .envs(inv.environment(
            std::env::vars_os(),
            &run_id,
            &bytecode_prefix,
            &site_dir,
            notes.as_deref(),
        ))
        .envs(confinement.iter().flat_map(Confinement::environment))
        // A confined run's helper reads the gate's word there (see below); the interpreter's
        // standard input is `/dev/null` either way.
        .stdin(if confinement.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);

    // Whatever descriptors Warden inherited from its caller stay with Warden.
    crate::hygiene::close_inherited_descriptors();
    // Unconfined, the interpreter is the first thing started: it waits for the gate here.
    let mut gate = gate;
    if confinement.is_none() && !gate.opened().await {
        return called_off(argv, inv.deadline);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return RunEvidence::not_started(argv, inv.deadline, spawn_failure(&inv.python, &e));
        }
    };
    // From here on, dropping `group` (on return or cancellation) kills whatever is left.
    let Some(pid) = child.id() else {
        return RunEvidence::not_started(
            argv,
            inv.deadline,
            "the pytest process vanished as it started".into(),
        );
    };
    let mut group = ProcessGroup::new(pid as i32, &run_id);
    if confinement
        .as_ref()
        .is_some_and(Confinement::own_pid_namespace)
    {
        group = group.in_own_pid_namespace();
    }
    // Confined, the helper sets the sandbox up meanwhile and then waits for a word on its
    // standard input before it starts the interpreter; a closed pipe calls the run off (and
    // returning drops `group`, which kills the helper).
    if let Some(mut word) = child.stdin.take() {
        if !gate.opened().await {
            return called_off(argv, inv.deadline);
        }
        // A helper that has already given up (the sandbox refused) closed its end; its exit
        // code and status file say why.
        let _ = word.write_all(b"\n").await;
    }
    let started = Instant::now();
    tracing::debug!(pid, ?argv, deadline = ?inv.deadline, "pytest started");
    progress.send_modify(|p| {
        *p = Progress {
            running: true,
            started: Some(started.into_std()),
            deadline: inv.deadline,
            ..Progress::default()
        }
    });

    let mut out = Sink {
        capture: Capture::new(inv.output_cap),
        parser: LineParser::with_root(&inv.root),
    };
    let mut err = Sink {
        capture: Capture::new(inv.output_cap),
        parser: StderrScanner::with_root(&inv.root),
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let mut timed_out = false;
    let mut running_at_deadline: Option<String> = None;
    let exit;
    let leaked;
    let output_complete;
    {
        let pumps = async {
            tokio::join!(
                pump(stdout, &mut out, |parser| publish(progress, parser)),
                pump(stderr, &mut err, |_| {})
            );
        };
        let mut pumps = std::pin::pin!(pumps);
        let mut pumped = false;
        let deadline = started + inv.deadline;

        exit = while_pumping(pumps.as_mut(), &mut pumped, async {
            tokio::select! {
                status = child.wait() => status.ok(),
                () = sleep_until(deadline) => {
                    timed_out = true;
                    // The test running now, before the interrupted session's summary moves on.
                    running_at_deadline = progress.borrow().current_test.clone();
                    // SIGINT first, as a person's Ctrl-C: pytest stops the hanging test, reports
                    // the failures before it and writes its report, so a hang does not hide
                    // them (on a loaded machine that can take seconds, so it gets most of the
                    // grace period). Whatever is still running three quarters of the way through
                    // gets SIGTERM, and SIGKILL at its end.
                    tracing::info!(pid, "deadline reached; sending SIGINT to the process group");
                    group.signal(Signal::SIGINT);
                    let interrupt_wait = inv.grace * 3 / 4;
                    match timeout(interrupt_wait, child.wait()).await {
                        Ok(status) => status.ok(),
                        Err(_) => {
                            tracing::info!(pid, "still running; sending SIGTERM to the process group");
                            group.signal(Signal::SIGTERM);
                            match timeout(inv.grace.saturating_sub(interrupt_wait), child.wait()).await {
                                Ok(status) => status.ok(),
                                Err(_) => {
                                    tracing::info!(pid, "grace period over; sending SIGKILL to the process group");
                                    group.signal(Signal::SIGKILL);
                                    timeout(KILL_WAIT, child.wait()).await.ok().and_then(Result::ok)
                                }
                            }
                        }
                    }
                }
            }
        })
        .await;

        leaked = while_pumping(
            pumps.as_mut(),
            &mut pumped,
            group.kill_leftovers(CLEANUP_BUDGET, exit.is_some()),
        )
        .await;
        if !leaked.is_empty() {
            tracing::warn!(
                count = leaked.len(),
                "killed processes left behind by the run"
            );
        }
        output_complete = pumped || timeout(DRAIN_DEADLINE, pumps.as_mut()).await.is_ok();
        if !output_complete {
            tracing::warn!(
                "output pipes still open after every known process exited; abandoning them"
            );
        }
    }
    out.parser.finish();
    err.parser.finish();
    drop(child);
    // Nothing of the run is left to change the tree; what follows is Warden's own work. Not
    // said while something Warden could not reach still holds the pipes.
    if output_complete {
        gate.ended();
    }
    if let Some(lease) = lease {
        if let (Some(plan), Some(_)) = (sandbox, &notes) {
            crate::precompile::fill(&lease, inv, plan, scratch.open_wanted()).await;
        }
        // Every process Warden could reach is gone: what the run compiled can be judged.
        let _ = tokio::task::spawn_blocking(move || lease.finish()).await;
    }

    let root = inv.root.clone();
    // Post-run work on what the run left (its report, its node ids) is linear, and cut off
    // here whatever the input.
    let parse_deadline = std::time::Instant::now() + PARSE_DEADLINE;
    // Read through the scratch directory's handle: a FIFO or link planted as the report is
    // refused (and said in the evidence), never waited on or followed.
    // Removing it afterwards happens there too, off the async workers: the code under test
    // may have filled it.
    let (report, report_problem) = tokio::task::spawn_blocking(move || {
        let read = match scratch.open_report() {
            Ok(Some(file)) => (
                Some(records::read_records(file, &root, parse_deadline)),
                None,
            ),
            Ok(None) => (None, None),
            Err(problem) => (None, Some(problem)),
        };
        drop(scratch);
        read
    })
    .await
    .unwrap_or((None, None));

    let findings = results::merge(report, &out.parser, &err.parser);
    let exit = exit.map(|status| {
        use std::os::unix::process::ExitStatusExt;
        Exit {
            code: status.code(),
            signal: status.signal(),
        }
    });
    let (outcome, mut diagnostics) = results::outcome(
        exit,
        timed_out,
        &inv.program(),
        &out.parser,
        &err.parser,
        &findings,
    );
    let timed_out_test = if timed_out {
        running_at_deadline.or_else(|| out.parser.running_test().map(str::to_owned))
    } else {
        None
    };
    if timed_out {
        diagnostics.insert(
            0,
            format!(
                "stopped at the {} s deadline (SIGINT, then SIGTERM to the process group, SIGKILL after a {} s grace period){}",
                inv.deadline.as_secs_f64(),
                inv.grace.as_secs_f64(),
                match &timed_out_test {
                    Some(test) => format!("; the running test was {test}"),
                    None => String::new(),
                }
            ),
        );
        if exit.is_none() {
            diagnostics.push("the pytest process did not exit even after SIGKILL".into());
        }
    }
    if !leaked.is_empty() {
        diagnostics.push(format!(
            "{} process(es) were still running after pytest exited and were killed",
            leaked.len()
        ));
    }
    if !output_complete {
        diagnostics.push(
            "a process outside the run's process group kept the output pipes open; output after that point was abandoned".into(),
        );
    }
    diagnostics.extend(cache_problem);
    diagnostics.extend(report_problem);
    let sandbox = confinement.as_ref().and_then(Confinement::status);
    match (&confinement, &sandbox) {
        (Some(_), Some(status)) if status.refused.is_some() => {
            let reason = status.refused.as_deref().unwrap_or_default();
            let mut evidence =
                RunEvidence::not_started(argv, inv.deadline, refusal_message(reason));
            evidence.sandbox = sandbox;
            return evidence;
        }
        (Some(_), None) if !timed_out => {
            return RunEvidence::not_started(
                argv,
                inv.deadline,
                format!(
                    "the sandbox helper did not report what it set up (exit {:?}); nothing is known to have run confined: {}",
                    exit.and_then(|e| e.code),
                    err.capture
                        .finish()
                        .text
                        .chars()
                        .take(500)
                        .collect::<String>()
                ),
            );
        }
        (_, Some(status)) if !status.missing.is_empty() => diagnostics.push(format!(
            "the sandbox ran best-effort; not in force: {}",
            status.missing.join("; ")
        )),
        _ => {}
    }
    if let Some(status) = &sandbox {
        let failures = findings
            .tests
            .iter()
            .filter(|t| t.outcome.is_failure())
            .filter_map(|t| t.message.as_deref());
        diagnostics.extend(confine::hints(
            status,
            inv.root.as_std_path(),
            failures,
            exit.and_then(|e| e.signal),
        ));
    }
    let duration = started.elapsed();
    progress.send_modify(|p| {
        p.running = false;
        p.current_test = None;
    });
    debug_assert!(outcome != RunOutcome::TimedOut || timed_out);
    RunEvidence {
        argv,
        outcome,
        exit_code: exit.and_then(|e| e.code),
        signal: exit.and_then(|e| e.signal),
        duration_ms: millis(duration),
        deadline_ms: millis(inv.deadline),
        timed_out,
        timed_out_test,
        counts: findings.counts,
        tests: findings.tests,
        tests_omitted: findings.tests_omitted,
        results_source: findings.source,
        collection_errors: findings.collection_errors,
        diagnostics,
        stdout: out.capture.finish(),
        stderr: err.capture.finish(),
        output_complete,
        leaked_processes: leaked,
        sandbox,
    }
}

/// Polls `work` to completion while also driving the pipe readers (until they finish).
async fn while_pumping<F: Future>(
    mut pumps: Pin<&mut impl Future<Output = ()>>,
    pumped: &mut bool,
    work: F,
) -> F::Output {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            output = &mut work => return output,
            () = pumps.as_mut(), if !*pumped => *pumped = true,
        }
    }
}

/// Reads a pipe to its end in fixed chunks, calling `fed` with the parser after each one.
async fn pump<P: Feed>(
    pipe: Option<impl AsyncRead + Unpin>,
    sink: &mut Sink<P>,
    mut fed: impl FnMut(&P),
) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                sink.capture.push(&buf[..n]);
                sink.parser.feed(&buf[..n]);
                fed(&sink.parser);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the process output failed");
                return;
            }
        }
    }
}

/// Publishes the run's progress as stdout's parser sees it, waking watchers only on a change.
fn publish(progress: &watch::Sender<Progress>, parser: &LineParser) {
    progress.send_if_modified(|p| {
        let current = parser.running_test();
        let changed = p.finished != parser.finished_count()
            || p.collected != parser.collected()
            || p.current_test.as_deref() != current;
        if changed {
            p.finished = parser.finished_count();
            p.failures = parser.failure_count();
            p.collected = parser.collected();
            p.current_test = current.map(str::to_owned);
            name_new_failures(p, parser);
        }
        changed
    });
}

/// How far back from the newest result [`name_new_failures`] looks.
const RECENT_RESULTS: usize = 256;

/// Adds the failures the parser has seen since the last snapshot to [`Progress::failed_tests`]
/// (up to its bound). New failures are looked for among the last [`RECENT_RESULTS`] results
/// only, so the work per snapshot is bounded whatever the run prints (a display may then miss
/// a failure in a burst; the report never does).
fn name_new_failures(p: &mut Progress, parser: &LineParser) {
    let named = p.failed_tests.len();
    let wanted = usize::try_from(p.failures)
        .unwrap_or(usize::MAX)
        .min(Progress::MAX_NAMED_FAILURES)
        .saturating_sub(named);
    if wanted == 0 {
        return;
    }
    let mut new: Vec<String> = Vec::new();
    for test in parser.tests().iter().rev().take(RECENT_RESULTS) {
        if new.len() == wanted {
            break;
        }
        if test.outcome.is_failure()
            && test.nodeid.contains("::")
            && !p.failed_tests.contains(&test.nodeid)
            && !new.contains(&test.nodeid)
        {
            new.push(test.nodeid.clone());
        }
    }
    p.failed_tests.extend(new.into_iter().rev());
}

/// What to tell a person when the interpreter could not be started.
fn spawn_failure(python: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "the Python interpreter `{python}` was not found: install Python 3 with pytest, or point Warden at an interpreter (the policy's `python`, the runner's interpreter option, or WARDEN_PYTHON)"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "the Python interpreter `{python}` is not executable: fix its permissions or point Warden at another interpreter"
        ),
        _ => format!("could not start `{python} -m pytest`: {e}"),
    }
}
