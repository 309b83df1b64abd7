//! `cargo xtask suites`: the yardstick. Real projects' test suites, from their PyPI source
//! distributions, unchanged, under bare pytest as their developers run them and under
//! `warden verify`: every outcome count (subtests included) must be identical, the tree's
//! fingerprint the same on every run of the unchanged tree, and Warden's time is compared with
//! bare pytest's (medians of alternating rounds; the target, × 1.03, is met when the 95 %
//! interval of the median per-round ratio is within it, see [`crate::bench::median_interval`]).
//!
//! 1. [`setup`]: the sdists (pinned, hash-checked, kept under `target/suites/sdists`) and a
//!    virtualenv under `target/suites/venv` with the pinned test dependencies and the projects
//!    installed from the sdists.
//! 2. Each project is unpacked twice into a temporary directory (outside the repository: a tree
//!    inside an ignored directory of a git repository would have an empty fingerprint), one copy
//!    per contender, so each keeps its own caches as a person's repeated runs would.
//! 3. The Warden copy gets its policy from `warden init` (the project's `testpaths`, on top of
//!    the built-in rules), as a person's first run would.
//! 4. The runs ([`mod@run`]): `--quick` runs each contender once (cold) and Warden a second time on
//!    one test, for the fingerprint; the full command runs each once to warm up, then
//!    `--rounds` timed rounds, alternating which goes first.
//! 5. A Markdown table ([`report`]) on stdout and in `target/suites/results.md`. Any count
//!    disagreement or unstable fingerprint fails the command; time is reported, never asserted.

mod counts;
mod projects;
mod report;
mod run;
mod setup;

use std::fs;
use std::io;

use camino::{Utf8Path, Utf8PathBuf};

use crate::bench::Machine;
use crate::process;
use crate::venv::VenvError;
use projects::Project;
use run::{BareRun, Contenders, WardenRun};

/// `cargo xtask suites` options.
#[derive(Debug, clap::Args)]
pub(crate) struct SuitesArgs {
    /// One cold run of each contender: counts and fingerprints only, no timing verdict.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Timed rounds per project after the warm-up run (without `--quick`). A time verdict
    /// needs at least 6 (fewer give no 95 % interval); more narrow it.
    #[arg(long, default_value_t = 11)]
    pub(crate) rounds: usize,
    /// Only this project (repeatable); by default all of them.
    #[arg(long = "project", value_name = "NAME")]
    pub(crate) projects: Vec<String>,
    /// Warden's sandbox: `on` (the default policy's, required: every run must report it
    /// enforced) or `off` (`[sandbox] mode = "off"` added to the policy `warden init` writes),
    /// to compare counts and times with and without it.
    #[arg(long, value_enum, default_value_t = Sandbox::On)]
    pub(crate) sandbox: Sandbox,
}

/// `--sandbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Sandbox {
    On,
    Off,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SuitesError {
    #[error(transparent)]
    Venv(#[from] VenvError),
    #[error("`{command}` failed ({status}); see its messages above (is PyPI reachable?)")]
    Failed { command: String, status: String },
    #[error("could not run `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
    #[error("could not {what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("`{build}` failed: {problem}")]
    Build { build: String, problem: String },
    #[error("no project is called `{0}`; the projects are {names}", names = project_names())]
    UnknownProject(String),
    #[error("{0}")]
    Unexpected(String),
    #[error(
        "Warden disagrees with bare pytest (see the table above and the logs in {logs}):\n{list}"
    )]
    Disagreement { logs: Utf8PathBuf, list: String },
}

fn project_names() -> String {
    projects::PROJECTS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> SuitesError {
    let what = what.into();
    move |source| SuitesError::Io { what, source }
}

/// How the runs of one project went.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) project: Project,
    /// Every bare run, in order (with `--quick` one; otherwise the warm-up first).
    pub(crate) bare: Vec<BareRun>,
    /// Every full Warden run, paired with `bare` by index.
    pub(crate) warden: Vec<WardenRun>,
    /// The fingerprint of the narrow second run (`--quick` only).
    pub(crate) narrow_fingerprint: Option<Option<String>>,
    /// Index of the first timed run (after the warm-up).
    pub(crate) timed_from: usize,
    /// Every disagreement found, in words.
    pub(crate) problems: Vec<String>,
}

/// Runs the yardstick for the workspace at `root`.
pub(crate) fn run(root: &Utf8Path, args: &SuitesArgs) -> Result<(), SuitesError> {
    let projects = projects::select(&args.projects).map_err(SuitesError::UnknownProject)?;
    let setup = setup::prepare(root)?;
    // Timed runs compare the release build; the quick check only counts, so the debug build
    // that `cargo test` has just made serves.
    let warden = process::build_warden(root, !args.quick).map_err(|e| SuitesError::Build {
        build: e.command,
        problem: e.problem,
    })?;
    let out_dir = root.join("target").join("suites");
    let logs = out_dir.join("logs");
    fs::create_dir_all(&logs).map_err(io_error(format!("create {logs}")))?;
    let temp = tempfile::Builder::new()
        .prefix("warden-suites-")
        .tempdir()
        .map_err(io_error("create a temporary directory"))?;
    let work = Utf8Path::from_path(temp.path()).ok_or_else(|| {
        SuitesError::Unexpected(format!(
            "the temporary directory {} is not UTF-8",
            temp.path().display()
        ))
    })?;
    let machine = Machine::probe(&setup.python);
    let contenders = Contenders {
        warden: &warden,
        venv: &setup.venv,
        python: &setup.python,
        logs: &logs,
    };
    let mut outcomes = Vec::new();
    for project in &projects {
        // A project whose run goes wrong (a timeout, a denial, a crash) is a finding like any
        // other disagreement: the others still run, and the table shows it.
        let outcome = match measure(&setup, &contenders, project, work, args) {
            Ok(outcome) => outcome,
            Err(SuitesError::Unexpected(problem)) => {
                println!("    PROBLEM: {problem}");
                Outcome {
                    project: *project,
                    bare: Vec::new(),
                    warden: Vec::new(),
                    narrow_fingerprint: None,
                    timed_from: 0,
                    problems: vec![problem],
                }
            }
            Err(other) => return Err(other),
        };
        outcomes.push(outcome);
    }
    let markdown = report::markdown(&machine.finish(), &outcomes, args);
    let results = out_dir.join(format!(
        "results{}{}.md",
        if args.quick { "-quick" } else { "" },
        if args.sandbox == Sandbox::Off {
            "-sandbox-off"
        } else {
            ""
        }
    ));
    fs::write(&results, &markdown).map_err(io_error(format!("write {results}")))?;
    println!("\n{markdown}");
    println!("(written to {results}; logs in {logs})");
    let list: Vec<String> = outcomes
        .iter()
        .flat_map(|o| {
            o.problems
                .iter()
                .map(move |p| format!("- {}: {p}", o.project.label()))
        })
        .collect();
    if list.is_empty() {
        Ok(())
    } else {
        Err(SuitesError::Disagreement {
            logs,
            list: list.join("\n"),
        })
    }
}

/// Runs one project under both contenders and checks what they report.
fn measure(
    setup: &setup::Setup,
    contenders: &Contenders<'_>,
    project: &Project,
    work: &Utf8Path,
    args: &SuitesArgs,
) -> Result<Outcome, SuitesError> {
    println!("==> {}: `{}`", project.label(), project.command());
    let trees = work.join(project.name);
    let mut roots = Vec::new();
    for side in ["bare", "warden"] {
        let dir = trees.join(side);
        fs::create_dir_all(&dir).map_err(io_error(format!("create {dir}")))?;
        roots.push(setup::unpack(setup, project, &dir)?);
    }
    let (bare_tree, warden_tree) = (&roots[0], &roots[1]);
    init(contenders.warden, warden_tree, project)?;
    let policy = warden_tree.join("warden.toml");
    let mut text = fs::read_to_string(&policy).map_err(io_error(format!("read {policy}")))?;
    if project.uses_xdist() {
        // What a person does: uncomment the opt-in line `warden init` wrote.
        const OPT_IN: &str = "# allow_options = [\"xdist\"]";
        if !text.contains(OPT_IN) {
            return Err(SuitesError::Unexpected(format!(
                "{}: `warden init` wrote no `{OPT_IN}` line to uncomment in {policy}",
                project.label()
            )));
        }
        text = text.replacen(OPT_IN, "allow_options = [\"xdist\"]", 1);
    }
    if args.sandbox == Sandbox::Off {
        text.push_str("\n[sandbox]\nmode = \"off\"\n");
    }
    fs::write(&policy, text).map_err(io_error(format!("write {policy}")))?;

    let mut bare = Vec::new();
    let mut warden = Vec::new();
    let mut narrow_fingerprint = None;
    let runs = if args.quick { 1 } else { 1 + args.rounds };
    for round in 0..runs {
        let name = if args.quick || round == 0 {
            "first".to_owned()
        } else {
            format!("round{round}")
        };
        // Alternate who goes first, so that drift in the machine's load hits both alike.
        let warden_first = round % 2 == 0 && round > 0;
        if warden_first {
            warden.push(contenders.warden(project, warden_tree, project.target, &name)?);
            bare.push(contenders.bare(project, bare_tree, &name)?);
        } else {
            bare.push(contenders.bare(project, bare_tree, &name)?);
            warden.push(contenders.warden(project, warden_tree, project.target, &name)?);
        }
        let (b, w) = (&bare[round], &warden[round]);
        println!(
            "    {name}: bare {:.2} s ({}); warden {:.2} s ({})",
            b.elapsed.as_secs_f64(),
            b.counts,
            w.elapsed.as_secs_f64(),
            w.counts
        );
    }
    if args.quick {
        // The tree's fingerprint does not depend on the target: a second run of one test sees
        // the tree the first run left, cheaply.
        let first = warden[0].first_test.clone().ok_or_else(|| {
            SuitesError::Unexpected(format!(
                "{}: Warden listed no tests; see {}",
                project.label(),
                warden[0].log
            ))
        })?;
        let again = contenders.warden(project, warden_tree, &first, "again")?;
        narrow_fingerprint = Some(again.fingerprint);
    }
    let mut problems = problems(&bare, &warden, narrow_fingerprint.as_ref());
    // Say so if the runs were not confined as asked: a comparison of the wrong thing.
    let wanted = (args.sandbox == Sandbox::On).then_some(true);
    if let Some(run) = warden.iter().find(|w| w.sandbox_enforced != wanted) {
        problems.push(format!(
            "asked for the sandbox {:?}, a Warden run reported `sandbox.enforced` {:?}; see {}",
            args.sandbox, run.sandbox_enforced, run.log
        ));
    }
    for problem in &problems {
        println!("    PROBLEM: {problem}");
    }
    Ok(Outcome {
        project: *project,
        bare,
        warden,
        narrow_fingerprint,
        timed_from: usize::from(!args.quick),
        problems,
    })
}

/// Every disagreement between the runs, in words.
fn problems(
    bare: &[BareRun],
    warden: &[WardenRun],
    narrow: Option<&Option<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(first_bare), Some(first_warden)) = (bare.first(), warden.first()) else {
        return vec!["no runs".to_owned()];
    };
    for (key, ours, theirs) in first_bare.counts.differences(&first_warden.counts) {
        out.push(format!(
            "{key}: bare pytest {ours}, Warden {theirs} (as pytest counts; Warden's counts: {})",
            first_warden.counts
        ));
    }
    for (i, run) in bare.iter().enumerate().skip(1) {
        if run.counts != first_bare.counts {
            out.push(format!(
                "bare pytest's counts changed in run {}: {} (first: {})",
                i + 1,
                run.counts,
                first_bare.counts
            ));
        }
    }
    for (i, run) in warden.iter().enumerate().skip(1) {
        if run.counts != first_warden.counts {
            out.push(format!(
                "Warden's counts changed in run {}: {} (first: {})",
                i + 1,
                run.counts,
                first_warden.counts
            ));
        }
    }
    let fingerprints: Vec<Option<&String>> = warden
        .iter()
        .map(|w| w.fingerprint.as_ref())
        .chain(narrow.map(Option::as_ref))
        .collect();
    if fingerprints.iter().any(Option::is_none) {
        out.push("a run reported no fingerprint (the tree changed during it?)".to_owned());
    } else if fingerprints.windows(2).any(|w| w[0] != w[1]) {
        out.push(format!(
            "the fingerprint of the unchanged tree changed between runs: {fingerprints:?}"
        ));
    }
    out
}

/// `warden init` in the Warden copy: the policy a person starts with, from what the project
/// declares. It must allow `project.target`, the test tree the bare run collects.
fn init(warden: &Utf8Path, tree: &Utf8Path, project: &Project) -> Result<(), SuitesError> {
    let mut command = std::process::Command::new(warden);
    command
        .arg("--root")
        .arg(tree)
        .args(["--color", "never", "init"])
        .stdin(std::process::Stdio::null());
    let described = process::describe(&command);
    let output = command.output().map_err(|source| SuitesError::Spawn {
        command: described.clone(),
        source,
    })?;
    let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        return Err(SuitesError::Unexpected(format!(
            "{}: `{described}` exited with {}: {said} {}",
            project.label(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    println!("    warden init: {said}");
    Ok(())
}
