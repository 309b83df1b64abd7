//! What Warden's own process leaks to the code it runs: descriptors and its memory.
//!
//! A test is arbitrary code running as the same user as Warden. Two things of Warden's would
//! reach it without care:
//!
//! - **Descriptors Warden inherited** from whoever started it (a harness's log file, a socket,
//!   a secret passed on descriptor 3) stay open across `exec` unless marked close-on-exec, so
//!   pytest would inherit them. Rust opens everything close-on-exec, so only inherited ones
//!   (and ones made by foreign code) are at risk: [`close_inherited_descriptors`] marks every
//!   descriptor above 2 close-on-exec. The executor calls it before every spawn; an embedder
//!   that runs Warden in a long-lived process gets the same guarantee without doing anything,
//!   but should know that its own descriptors above 2 stop being inherited by anything it
//!   spawns afterwards without asking for them explicitly.
//! - **Warden's environment and memory**: a process of the same user can read
//!   `/proc/<pid>/environ` and `/proc/<pid>/mem` of a *dumpable* process. [`harden_process`]
//!   makes Warden non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`), so those files belong to root
//!   and stay closed to the tests (a process with `CAP_SYS_PTRACE` can still read them). Python
//!   starts dumpable again at `exec`, so this does not change how pytest runs.

use std::io;

/// Makes this process non-dumpable and marks every descriptor above 2 close-on-exec. The
/// `warden` binary calls it first thing; an embedder should call it early in `main` too.
pub fn harden_process() -> io::Result<()> {
    close_inherited_descriptors();
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

/// Marks every open descriptor above 2 close-on-exec, so no child inherits it (stdin, stdout
/// and stderr are given to children explicitly).
pub fn close_inherited_descriptors() {
    close_fds::set_fds_cloexec_threadsafe(3, &[]);
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::process::Command;

    use super::*;

    #[test]
    fn a_descriptor_without_close_on_exec_is_not_inherited_after_it() {
        let file = tempfile::tempfile().unwrap();
        let fd = file.as_raw_fd();
        // Clear close-on-exec, as an inherited descriptor would have it.
        rustix::io::fcntl_setfd(&file, rustix::io::FdFlags::empty()).unwrap();
        let open_in_child = |fd: i32| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("test -e /proc/self/fd/{fd}"))
                .status()
                .unwrap()
                .success()
        };
        assert!(open_in_child(fd), "the test's premise: it is inherited");
        close_inherited_descriptors();
        assert!(!open_in_child(fd), "still inherited");
        // Still open here.
        assert!(rustix::fs::fstat(&file).is_ok());
    }
}
