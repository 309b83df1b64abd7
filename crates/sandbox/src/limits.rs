//! Resource limits as rlimits, inherited by every process of the run.

use nix::sys::resource::{Resource, setrlimit};

use crate::config::{Limits, Status};

pub(crate) fn apply(limits: &Limits, status: &mut Status) {
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
    status.limits.processes = set(Resource::RLIMIT_NPROC, limits.processes, "process", status);
    status.limits.file_size_bytes = set(
        Resource::RLIMIT_FSIZE,
        limits.file_size_bytes,
        "file size",
        status,
    );
}
