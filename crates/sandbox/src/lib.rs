//! Confines a command: namespaces, Landlock and resource limits.
//!
//! Warden runs the code under test inside a sandbox set up by a helper mode of its own binary
//! (`warden __sandbox-exec CONFIG -- python -m pytest ...`): the helper enters new user, mount,
//! PID and network namespaces, binds Warden's state read-only, restricts the file system with
//! Landlock, sets rlimits, and then starts the command as the child of the namespace's PID 1.
//! Nothing here needs `unsafe` or a `pre_exec` hook: the helper is a fresh single-threaded
//! process, and the kernel does the rest when PID 1 exits. See [`helper`] for the stages.
//!
//! The executor builds a [`Config`], runs the helper, and reads back the [`Status`] (what was in
//! force) that the helper writes before the command starts.
//!
//! ```
//! use std::path::PathBuf;
//! use warden_sandbox::{Config, Limits, Mode, Network};
//!
//! let config = Config {
//!     mode: Mode::Required,
//!     root: PathBuf::from("/work/project"),
//!     read: vec![PathBuf::from("/usr")],
//!     write: vec![PathBuf::from("/tmp/warden-run-x/tmp")],
//!     write_files: vec![PathBuf::from("/dev/null")],
//!     read_only: vec![PathBuf::from("/work/project/.warden")],
//!     network: Network::Loopback,
//!     limits: Limits { memory_bytes: Some(4 << 30), processes: Some(512), file_size_bytes: None },
//!     status_file: PathBuf::from("/tmp/warden-sandbox-x/status.json"),
//!     gate: false,
//! };
//! let json = serde_json::to_string(&config).unwrap();
//! assert!(json.contains("\"loopback\""));
//! ```

mod config;
pub mod helper;
mod landlock_rules;
mod limits;
mod mounts;
mod netlink;
mod userns;

pub use config::{
    Config, DEVICE_WRITE, Limits, Mode, Network, SYSTEM_READ, SYSTEM_WRITE, Status,
    interpreter_trees,
};
pub use helper::{EXIT_REFUSED, HELPER_ARG};
