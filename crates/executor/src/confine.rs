//! The spawn seam of the sandbox: wraps pytest's command line in the `warden-sandbox` helper,
//! gives the run a private temporary directory, and reads back what was in force.
//!
//! The helper is a program the caller names ([`PytestRunner::with_sandbox_launcher`]; the
//! `warden` binary names itself): the executor is a library and cannot assume which binary it
//! lives in. Without a launcher nothing is confined and the evidence says so (`sandbox: None`).
//!
//! [`PytestRunner::with_sandbox_launcher`]: crate::PytestRunner::with_sandbox_launcher

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use warden_governance_api::{SandboxMode, SandboxNetwork, SandboxSettings};
use warden_sandbox::{Config, DEVICE_WRITE, Limits, Mode, Network, SYSTEM_READ, Status};

use crate::invocation::Invocation;

/// What the runner was told to confine runs with.
#[derive(Debug, Clone)]
pub(crate) struct SandboxPlan {
    pub(crate) launcher: PathBuf,
    pub(crate) settings: SandboxSettings,
}

/// Paths in the root that always stay read-only to tests: Warden's state (ledger, bytecode
/// cache), the policy, and the repository's history.
const WARDEN_PROTECTED: &[&str] = &[".warden", "warden.toml", ".git"];

/// One confined run: its private directory (temporary files, the helper's status) and config.
pub(crate) struct Confinement {
    launcher: PathBuf,
    dir: tempfile::TempDir,
    config: Config,
    /// Protected paths that did not exist before the run: a bind mount needs something to
    /// cover, so the run could create them (a `warden.toml` would be the next run's policy, a
    /// `.git/config` would run its commands in Warden's `git ls-files`). Whatever is there
    /// after the run is the run's plant and is removed.
    absent: Vec<PathBuf>,
}

impl Confinement {
    /// Prepares the confinement of `inv`, whose results records go into `report_dir`.
    pub(crate) fn prepare(
        plan: &SandboxPlan,
        inv: &Invocation,
        report_dir: &Path,
    ) -> Result<Confinement, String> {
        let mode = match plan.settings.mode {
            SandboxMode::Required => Mode::Required,
            SandboxMode::BestEffort => Mode::BestEffort,
            SandboxMode::Off => return Err("the sandbox is off".into()),
        };
        let dir = tempfile::Builder::new()
            .prefix("warden-sandbox-")
            .tempdir()
            .map_err(|e| format!("could not create the sandbox's private directory: {e}"))?;
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp)
            .map_err(|e| format!("could not create the run's private TMPDIR: {e}"))?;
        let root = inv.root.as_std_path().to_path_buf();
        let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
        if let Some(python) = resolve_program(&inv.program()) {
            read.extend(warden_sandbox::interpreter_trees(&python));
        }
        if let Some(cache) = &inv.bytecode_cache {
            read.push(cache.as_std_path().to_path_buf());
        }
        read.extend(plan.settings.read.iter().map(PathBuf::from));
        let mut write = vec![tmp, report_dir.to_path_buf()];
        write.extend(warden_sandbox::SYSTEM_WRITE.iter().map(PathBuf::from));
        write.extend(plan.settings.write.iter().map(PathBuf::from));
        let mut read_only: Vec<PathBuf> = Vec::new();
        for rel in WARDEN_PROTECTED
            .iter()
            .map(|p| p.to_string())
            .chain(plan.settings.protected.iter().cloned())
            .filter(|p| !p.is_empty() && p != ".")
        {
            let path = root.join(rel);
            if !read_only.contains(&path) {
                read_only.push(path);
            }
        }
        let absent = read_only
            .iter()
            .filter(|p| {
                std::fs::symlink_metadata(p)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            })
            .cloned()
            .collect();
        let config = Config {
            mode,
            root,
            read,
            write,
            write_files: DEVICE_WRITE.iter().map(PathBuf::from).collect(),
            read_only,
            network: match plan.settings.network {
                SandboxNetwork::None => Network::None,
                SandboxNetwork::Loopback => Network::Loopback,
                SandboxNetwork::Host => Network::Host,
            },
            limits: Limits {
                memory_bytes: plan.settings.memory_bytes,
                processes: plan.settings.processes,
                file_size_bytes: plan.settings.file_size_bytes,
            },
            status_file: dir.path().join("status.json"),
            gate: false,
        };
        Ok(Confinement {
            launcher: plan.launcher.clone(),
            dir,
            config,
            absent,
        })
    }

    /// Whether the run certainly has a PID namespace of its own, whose init is the helper's
    /// child: the mode is `required`, so the helper runs nothing without one.
    pub(crate) fn own_pid_namespace(&self) -> bool {
        self.config.mode == Mode::Required
    }

    /// The helper's program and arguments running `argv` confined; `gated`, it waits for a
    /// word on its standard input before it starts `argv` (see [`crate::StartGate`]).
    pub(crate) fn command(
        &self,
        argv: &[String],
        gated: bool,
    ) -> Result<(PathBuf, Vec<OsString>), String> {
        let config = Config {
            gate: gated,
            ..self.config.clone()
        };
        let config = serde_json::to_string(&config)
            .map_err(|e| format!("could not write the sandbox configuration: {e}"))?;
        let mut args: Vec<OsString> = vec![
            warden_sandbox::HELPER_ARG.into(),
            config.into(),
            "--".into(),
        ];
        args.extend(argv.iter().map(OsString::from));
        Ok((self.launcher.clone(), args))
    }

    /// The environment the confined run gets on top of the invocation's: its private
    /// temporary directory.
    pub(crate) fn environment(&self) -> Vec<(&'static str, PathBuf)> {
        let tmp = self.dir.path().join("tmp");
        ["TMPDIR", "TMP", "TEMP"]
            .into_iter()
            .map(|name| (name, tmp.clone()))
            .collect()
    }

    /// What the helper reported to have in force (`None` if it never got that far), once the
    /// run is over: first it removes what the run planted where a protected path was absent
    /// (every process of the run is gone by then, so nothing recreates it), and lists it in
    /// [`Status::removed`].
    pub(crate) fn status(&self) -> Option<Status> {
        let bytes = std::fs::read(&self.config.status_file).ok()?;
        let mut status: Status = serde_json::from_slice(&bytes).ok()?;
        for path in &self.absent {
            match remove_plant(path) {
                Ok(false) => {}
                Ok(true) => status.removed.push(path.clone()),
                Err(e) => status.missing.push(format!(
                    "{} was created by the run and could not be removed: {e}; remove it before trusting the next run",
                    path.display()
                )),
            }
        }
        Some(status)
    }
}

/// Removes what is at `path` without following links; `Ok(false)`: nothing was there.
fn remove_plant(path: &Path) -> std::io::Result<bool> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        open_up(path);
        std::fs::remove_dir_all(path)?;
    } else {
        std::fs::remove_file(path)?;
    }
    Ok(true)
}

/// Makes every directory beneath `top` writable by its owner, so that Warden running as the
/// run's user can empty the directories a test made read-only. Iterative: the depth is the
/// test's choice.
fn open_up(top: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut dirs = vec![top.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        dirs.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
}

/// The interpreter's path: a path as is, a bare name through `PATH`.
pub(crate) fn resolve_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The message for a run the sandbox refused: what is missing and how to choose.
pub(crate) fn refusal_message(reason: &str) -> String {
    format!(
        "the sandbox is required but not available: {reason}. Nothing ran. Fix the machine, or choose in warden.toml: `[sandbox] mode = \"best-effort\"` (run with what is available, the report names what is missing) or `mode = \"off\"` (no confinement)"
    )
}

/// Retry-context hints for failures the sandbox caused: a path it refused (naming the policy
/// key that would allow it) or a limit a test ran into (naming its key).
pub(crate) fn hints(
    status: &Status,
    root: &Path,
    messages: impl IntoIterator<Item = impl AsRef<str>>,
    signal: Option<i32>,
) -> Vec<String> {
    let mut hints: Vec<String> = Vec::new();
    let mut add = |hint: String| {
        if !hints.contains(&hint) && hints.len() < 5 {
            hints.push(hint);
        }
    };
    for path in &status.removed {
        add(format!(
            "the run created `{}`, which the sandbox protects (Warden's state, the policy, the repository's history or a surface a deny rule protects); Warden removed it after the run: tests may not plant it",
            path.display()
        ));
    }
    for message in messages {
        let message = message.as_ref();
        if let Some((errno, path)) = refused_path(message) {
            let absolute = if path.starts_with('/') {
                PathBuf::from(path)
            } else {
                root.join(path)
            };
            if errno == 30 || status.read_only.iter().any(|p| absolute.starts_with(p)) {
                add(format!(
                    "the sandbox keeps `{}` read-only: it is Warden's state, the policy, the repository's history or a surface a deny rule protects; tests may not write it",
                    absolute.display()
                ));
            } else {
                add(format!(
                    "the sandbox refused `{}` (errno {errno}): tests may read and write only the root and their private TMPDIR; if the test really needs it, list it in warden.toml under `[sandbox] read` (to read) or `[sandbox] write` (to write)",
                    absolute.display()
                ));
            }
        }
        if message.contains("MemoryError")
            && let Some(bytes) = status.limits.memory_bytes
        {
            add(format!(
                "a test ran out of memory under the sandbox's limit of {} MiB per process (`[sandbox] memory_mb` in warden.toml)",
                bytes / (1024 * 1024)
            ));
        }
        if message.contains("[Errno 11] Resource temporarily unavailable")
            && let Some(n) = status.limits.processes
        {
            add(format!(
                "a test could not start a process or thread: the sandbox allows {n} at once (`[sandbox] processes` in warden.toml)"
            ));
        }
    }
    if signal == Some(25)
        && let Some(bytes) = status.limits.file_size_bytes
    {
        add(format!(
            "the run was killed by SIGXFSZ: a file grew past the sandbox's limit of {} MiB (`[sandbox] file_size_mb` in warden.toml)",
            bytes / (1024 * 1024)
        ));
    }
    hints
}

/// `(errno, path)` of Python's `[Errno N] text: 'path'` for the errnos the sandbox causes
/// (EPERM, EACCES, EROFS).
fn refused_path(message: &str) -> Option<(u32, &str)> {
    for (errno, tag) in [(13, "[Errno 13] "), (1, "[Errno 1] "), (30, "[Errno 30] ")] {
        if let Some(at) = message.find(tag) {
            let rest = &message[at + tag.len()..];
            let open = rest.find(": '")? + 3;
            let close = rest[open..].find('\'')?;
            return Some((errno, &rest[open..open + close]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        let mut s: Status = serde_json::from_str(
            r#"{"mode":"required","enforced":true,"landlock_abi":6,"scopes":[],"namespaces":[],
            "network":"loopback","limits":{"memory_bytes":268435456,"processes":64,"file_size_bytes":null},
            "read_only":["/p/.warden"],"missing":[],"refused":null}"#,
        )
        .unwrap();
        s.enforced = true;
        s
    }

    #[test]
    fn refused_paths_name_the_policy_key() {
        let h = hints(
            &status(),
            Path::new("/p"),
            ["PermissionError: [Errno 13] Permission denied: '/root/.ssh/id'"],
            None,
        );
        assert_eq!(h.len(), 1);
        assert!(
            h[0].contains("/root/.ssh/id") && h[0].contains("[sandbox] read"),
            "{h:?}"
        );
        let h = hints(
            &status(),
            Path::new("/p"),
            ["OSError: [Errno 30] Read-only file system: '.warden/ledger.jsonl'"],
            None,
        );
        assert!(h[0].contains("/p/.warden/ledger.jsonl") && h[0].contains("read-only"));
    }

    #[test]
    fn limits_are_named() {
        let h = hints(
            &status(),
            Path::new("/p"),
            [
                "MemoryError",
                "BlockingIOError: [Errno 11] Resource temporarily unavailable",
            ],
            None,
        );
        assert!(
            h[0].contains("256 MiB") && h[0].contains("memory_mb"),
            "{h:?}"
        );
        assert!(
            h[1].contains("64") && h[1].contains("[sandbox] processes"),
            "{h:?}"
        );
        assert!(hints(&status(), Path::new("/p"), ["AssertionError"], None).is_empty());
    }
}
