//! What the sandbox costs a run to set up: `warden __sandbox-exec CONFIG -- /bin/true` against
//! `/bin/true`, alternating, with the configuration the executor writes for a run of the
//! bench's Python (its trees readable, a private TMPDIR and report directory writable,
//! Warden's state read-only, loopback network, the default limits). The difference is the
//! helper's whole cost: its two stages (each an exec of `warden`), the namespaces, mounts,
//! `lo`, the limits, Landlock, the status file, and the teardown when the run ends.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use camino::Utf8Path;
use warden_sandbox::{Config, DEVICE_WRITE, Limits, Mode, Network, SYSTEM_READ, SYSTEM_WRITE};

use super::{BenchError, io_error, median, spread, yes};

/// The target for the setup, per run.
const TARGET_MS: f64 = 10.0;

/// Timings of both contenders, one pair per round.
#[derive(Debug, Clone)]
pub(super) struct Setup {
    pub(super) bare: Vec<Duration>,
    pub(super) confined: Vec<Duration>,
}

/// Runs `rounds` alternating rounds in a project under `dir`.
pub(super) fn measure(
    warden: &Utf8Path,
    python: &Utf8Path,
    dir: &Utf8Path,
    rounds: usize,
) -> Result<Setup, BenchError> {
    let root = dir.join("sandbox-setup");
    let private = root.join("private");
    for d in [root.join("project/.warden"), private.join("tmp")] {
        fs::create_dir_all(&d).map_err(io_error(format!("create {d}")))?;
    }
    let project = root.join("project");
    let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
    read.extend(warden_sandbox::interpreter_trees(python.as_std_path()));
    let mut write = vec![
        private.join("tmp").into_std_path_buf(),
        private.clone().into_std_path_buf(),
    ];
    write.extend(SYSTEM_WRITE.iter().map(PathBuf::from));
    let status_file = root.join("status.json").into_std_path_buf();
    let config = Config {
        mode: Mode::Required,
        root: project.clone().into_std_path_buf(),
        read,
        write,
        write_files: DEVICE_WRITE.iter().map(PathBuf::from).collect(),
        read_only: [".warden", "warden.toml", ".git"]
            .iter()
            .map(|p| project.join(p).into_std_path_buf())
            .collect(),
        network: Network::Loopback,
        limits: Limits {
            memory_bytes: Some(4 << 30),
            processes: Some(1024),
            file_size_bytes: Some(1 << 30),
        },
        status_file: status_file.clone(),
        gate: false,
    };
    let json = serde_json::to_string(&config)
        .map_err(|e| BenchError::Unexpected(format!("the sandbox configuration: {e}")))?;
    let mut confined = Command::new(warden);
    confined
        .args([warden_sandbox::HELPER_ARG, &json, "--", "/bin/true"])
        .current_dir(&project);
    let mut bare = Command::new("/bin/true");
    bare.current_dir(&project);
    let mut result = Setup {
        bare: Vec::new(),
        confined: Vec::new(),
    };
    // One unmeasured round each: page cache, the dynamic loader's first look.
    for round in 0..=rounds {
        // As in a real run, the helper creates its status file afresh.
        let _ = fs::remove_file(&status_file);
        let (b, c) = if round % 2 == 0 {
            (timed(&mut bare)?, timed(&mut confined)?)
        } else {
            let c = timed(&mut confined)?;
            (timed(&mut bare)?, c)
        };
        if round > 0 {
            result.bare.push(b);
            result.confined.push(c);
        }
    }
    Ok(result)
}

fn timed(command: &mut Command) -> Result<Duration, BenchError> {
    let started = Instant::now();
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(io_error(format!("run {}", super::describe(command))))?;
    let elapsed = started.elapsed();
    if !status.status.success() {
        return Err(BenchError::Command {
            command: super::describe(command),
            problem: format!(
                "exited with {}: {}",
                status.status,
                String::from_utf8_lossy(&status.stderr).trim()
            ),
        });
    }
    Ok(elapsed)
}

impl Setup {
    /// The table's row.
    pub(super) fn row(&self, out: &mut String) {
        let ms = |d: &[Duration]| d.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>();
        let (bare, confined) = (ms(&self.bare), ms(&self.confined));
        let shown = |v: &[f64]| {
            let (low, high) = spread(v);
            format!("{:.2} ms [{low:.2}–{high:.2}]", median(v))
        };
        // Paired by round, so that a slow moment weighs on both sides of one difference.
        let differences: Vec<f64> = confined.iter().zip(&bare).map(|(c, b)| c - b).collect();
        let cost = median(&differences);
        let _ = writeln!(
            out,
            "| Sandbox setup: `warden __sandbox-exec CONFIG -- /bin/true` (user, mount, PID, \
             network namespaces, Landlock, limits) against `/bin/true` ({} rounds) | {} | {} | \
             +{cost:.2} ms per run (median of paired differences) | ≤ {TARGET_MS:.0} ms | {} |",
            self.bare.len(),
            shown(&confined),
            shown(&bare),
            yes(cost <= TARGET_MS)
        );
    }
}
