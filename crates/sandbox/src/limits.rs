//! Resource limits: rlimits inherited by every process of the run, and the PID namespace's own
//! `pid_max` for the process count.

use nix::sys::resource::{Resource, setrlimit};

use crate::config::{Limits, Status};

/// PIDs the kernel skips when it wraps around (`RESERVED_PIDS`): after a wrap, a namespace's
/// PIDs are handed out from here to `pid_max`.
const RESERVED_PIDS: u64 = 300;

/// The largest `pid_max` the kernel accepts (`PID_MAX_LIMIT` on 64-bit).
const PID_MAX_LIMIT: u64 = 4 * 1024 * 1024;

/// Applies `limits` to this process (and so to everything it starts). `own_pid_namespace`:
/// this process is PID 1 of a namespace of its own, whose `pid_max` may be set.
pub(crate) fn apply(limits: &Limits, own_pid_namespace: bool, status: &mut Status) {
    let set = |resource, value: Option<u64>, name: &str, status: &mut Status| -> Option<u64> {
        let value = value?;
        match setrlimit(resource, value, value) {
            Ok(()) => Some(value),
            Err(e) => {
                status.missing.push(format!("the {name} limit: {e}"));
                None
            }
        }
    };
    status.limits.memory_bytes = set(Resource::RLIMIT_DATA, limits.memory_bytes, "memory", status);
    status.limits.file_size_bytes = set(
        Resource::RLIMIT_FSIZE,
        limits.file_size_bytes,
        "file size",
        status,
    );
    let Some(processes) = limits.processes else {
        return;
    };
    // RLIMIT_NPROC counts the user's processes in the run's user namespace, but the kernel
    // exempts the host's root from it altogether: for a root run only `pid_max` binds.
    let rlimit = setrlimit(Resource::RLIMIT_NPROC, processes, processes);
    let pid_max = if own_pid_namespace {
        set_pid_max(processes)
    } else {
        Err("the run has no PID namespace of its own".into())
    };
    let root = nix::unistd::getuid().is_root();
    match (rlimit, pid_max) {
        (_, Ok(())) => status.limits.processes = Some(processes),
        (Ok(()), Err(_)) if !root => status.limits.processes = Some(processes),
        (Ok(()), Err(why)) => status.missing.push(format!(
            "the process limit: RLIMIT_NPROC does not bind a run as root, and the PID namespace's pid_max could not be set ({why}; Linux 6.14 or later): run Warden as another user"
        )),
        (Err(e), _) => status.missing.push(format!("the process limit: {e}")),
    }
}

/// Caps the PIDs of this process's PID namespace so that at least `processes` processes and
/// threads can live at once, and never more than `processes + 299` (PIDs below
/// [`RESERVED_PIDS`] are used only before the first wrap). The run cannot raise it: Landlock
/// keeps `/proc` read-only to it, and a nested namespace still takes a PID in this one.
fn set_pid_max(processes: u64) -> Result<(), String> {
    let value = processes.saturating_add(RESERVED_PIDS).min(PID_MAX_LIMIT);
    std::fs::write("/proc/sys/kernel/pid_max", value.to_string()).map_err(|e| e.to_string())
}
