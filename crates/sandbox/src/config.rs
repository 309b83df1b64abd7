//! What a confined run may do ([`Config`]) and what was in force ([`Status`]): the two documents
//! that cross from Warden to the helper and back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How hard Warden insists on confinement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every protection or nothing runs.
    Required,
    /// Whatever the kernel offers; what is missing is named in the status.
    BestEffort,
}

/// What the run may reach on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// A private network namespace with no interface up.
    None,
    /// A private network namespace with only `lo` up: 127.0.0.1 works, nothing else exists.
    Loopback,
    /// The host's network.
    Host,
}

/// Resource limits (per process, as rlimits; `None` leaves the inherited limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes of private writable memory (`RLIMIT_DATA`) each process may map.
    pub memory_bytes: Option<u64>,
    /// Processes and threads the run may have at once: `RLIMIT_NPROC` in the run's user
    /// namespace (which the kernel does not apply to the host's root) and the run's PID
    /// namespace's `pid_max` (which binds root too, at `processes` to `processes + 299`).
    pub processes: Option<u64>,
    /// The largest file a process may write (`RLIMIT_FSIZE`; past it, `SIGXFSZ`).
    pub file_size_bytes: Option<u64>,
}

/// Everything the helper needs to confine one run. Paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Insistence.
    pub mode: Mode,
    /// The project root: the run's working directory, readable and writable.
    pub root: PathBuf,
    /// Trees the run may read and execute beneath (besides the root).
    pub read: Vec<PathBuf>,
    /// Trees the run may write beneath (besides the root).
    pub write: Vec<PathBuf>,
    /// Single files the run may read and write (`/dev/null` and friends).
    pub write_files: Vec<PathBuf>,
    /// Paths inside the root that stay read-only to the run (Warden's state, the policy).
    pub read_only: Vec<PathBuf>,
    /// Network reach.
    pub network: Network,
    /// Resource limits.
    pub limits: Limits,
    /// Where the helper writes its [`Status`] before the command starts (outside every writable
    /// tree, so the command cannot rewrite it).
    pub status_file: PathBuf,
    /// The command waits for a word: once the sandbox is set up, the init stage reads its
    /// standard input (a pipe from the caller) and starts the command only after a byte
    /// arrives (end of file calls the run off); the command's own standard input is
    /// `/dev/null`. So the caller can do its last work before the run while the sandbox is set
    /// up (Warden fingerprints the tree then).
    #[serde(default)]
    pub gate: bool,
}

/// The system trees every Python run reads: programs, libraries, configuration, devices and the
/// process file system. Missing ones are skipped.
pub const SYSTEM_READ: &[&str] = &[
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/opt", "/proc", "/dev", "/sys",
    "/run", "/var/lib",
];

/// System directories the run may write: `/dev/shm` (POSIX semaphores and shared memory, which
/// `multiprocessing` needs; private to the run when the mount namespace is in force).
pub const SYSTEM_WRITE: &[&str] = &["/dev/shm"];

/// Device files the run may write (Python and its tests open them for writing).
pub const DEVICE_WRITE: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
    "/dev/ptmx",
];

/// The trees an interpreter needs beyond the system ones: its own prefix and, for a virtual
/// environment (a `pyvenv.cfg` beside or above its `bin/`), the environment and the base
/// installation it names. Found from files, without starting Python (which would cost more
/// than the whole sandbox).
pub fn interpreter_trees(python: &Path) -> Vec<PathBuf> {
    let mut trees = Vec::new();
    let mut add = |p: PathBuf| {
        if !trees.contains(&p) {
            trees.push(p);
        }
    };
    for candidate in [
        Some(python.to_path_buf()),
        std::fs::canonicalize(python).ok(),
    ]
    .into_iter()
    .flatten()
    {
        // <prefix>/bin/python
        let Some(prefix) = candidate.parent().and_then(Path::parent) else {
            continue;
        };
        add(prefix.to_path_buf());
        if let Ok(cfg) = std::fs::read_to_string(prefix.join("pyvenv.cfg")) {
            for line in cfg.lines() {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                if key.trim() == "home"
                    && let Some(base) = Path::new(value.trim()).parent()
                {
                    add(base.to_path_buf());
                    if let Ok(real) = std::fs::canonicalize(base) {
                        add(real);
                    }
                }
            }
        }
    }
    trees
}

/// What was in force for one run: the report's `sandbox` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The insistence the run had.
    pub mode: Mode,
    /// Every protection asked for is in force.
    pub enforced: bool,
    /// The Landlock ABI the file-system rules were enforced with (`None`: not enforced).
    pub landlock_abi: Option<u32>,
    /// Landlock scopes in force (`signal`, `abstract_unix_socket`).
    pub scopes: Vec<String>,
    /// The namespaces the run got (`user`, `pid`, `mount`, `net`).
    pub namespaces: Vec<String>,
    /// Network reach.
    pub network: Network,
    /// Limits in force.
    pub limits: Limits,
    /// Paths in the root kept read-only.
    pub read_only: Vec<PathBuf>,
    /// Protections asked for and not in force, each with the reason.
    pub missing: Vec<String>,
    /// Set when the run was refused (mode `required` and something is missing): nothing ran.
    pub refused: Option<String>,
    /// Protected paths that did not exist when the run started and that the run created (a
    /// planted policy or repository): the caller removes them after the run and lists them
    /// here. The helper never sets it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<PathBuf>,
}

impl Status {
    /// A fresh status for `config`, nothing in force yet.
    pub fn new(config: &Config) -> Status {
        Status {
            mode: config.mode,
            enforced: false,
            landlock_abi: None,
            scopes: Vec::new(),
            namespaces: Vec::new(),
            network: config.network,
            limits: Limits::default(),
            read_only: Vec::new(),
            missing: Vec::new(),
            refused: None,
            removed: Vec::new(),
        }
    }

    /// One line for a person: what confined the run.
    pub fn summary(&self) -> String {
        if let Some(reason) = &self.refused {
            return format!("refused: {reason}");
        }
        let landlock = match self.landlock_abi {
            Some(abi) => format!("landlock ABI {abi}"),
            None => "no landlock".to_owned(),
        };
        let network = match self.network {
            Network::None => "no network",
            Network::Loopback => "loopback only",
            Network::Host => "host network",
        };
        let mut line = format!(
            "{landlock}, namespaces {}, {network}",
            if self.namespaces.is_empty() {
                "none".to_owned()
            } else {
                self.namespaces.join("+")
            }
        );
        if !self.missing.is_empty() {
            line.push_str(&format!("; missing: {}", self.missing.join("; ")));
        }
        line
    }
}
