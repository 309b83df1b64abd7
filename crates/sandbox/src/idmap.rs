//! The user namespace's uid/gid maps.
//!
//! A process that enters a user namespace itself may map only its own ids. For an ordinary
//! user that is all the host grants anyway. For root it is not: the project may belong to
//! another user (a checkout mounted into a container, an unpacked archive keeping its owner),
//! and root inside a namespace has capabilities only over files whose owner is mapped, so
//! the tests could no longer write their own project, which bare pytest as root can. So when
//! the helper runs as root it starts stage 1 as a child and writes that child's maps from
//! outside, where root may map every id to itself: files keep their owners and root keeps
//! its reach over them, and nothing beyond the namespace.
//!
//! The handshake needs no shared memory: the parent watches `/proc/<child>/ns/user` change,
//! writes the maps, then sends one byte on the child's stdin ([`MAPPED`], or [`MAP_YOURSELF`]
//! when it could not, so the child falls back to mapping itself).

use std::io::{Read, Write};
use std::process::{Child, ChildStdin};
use std::time::{Duration, Instant};

/// Sent by the parent: the maps are written.
pub(crate) const MAPPED: u8 = b'm';
/// Sent by the parent: it could not write the maps; the child maps its own ids.
pub(crate) const MAP_YOURSELF: u8 = b's';

/// How long the parent waits for the child to enter its user namespace.
const ENTER_DEADLINE: Duration = Duration::from_secs(10);

/// Every id mapped to itself.
const IDENTITY: &str = "0 0 4294967295\n";

/// Who writes the maps of the namespace stage 1 enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Maps {
    /// Stage 1 maps its own uid and gid (one id each).
    Own,
    /// Stage 1's parent writes them; stage 1 waits for its byte on stdin.
    FromParent,
}

/// In the parent: waits (with a deadline) for `child` to enter a user namespace, maps every id
/// to itself there and tells it so on `stdin`. `Err` says what went wrong; the child has then
/// been told to map itself, or is gone.
pub(crate) fn map_child(child: &mut Child, stdin: ChildStdin) -> Result<(), String> {
    let mut stdin = stdin;
    let outcome = wait_for_namespace(child).and_then(|()| write_identity(child.id()));
    let byte = if outcome.is_ok() {
        MAPPED
    } else {
        MAP_YOURSELF
    };
    // The child may already be gone; its exit status says why.
    let _ = stdin.write_all(&[byte]);
    outcome
}

fn wait_for_namespace(child: &mut Child) -> Result<(), String> {
    let ns = |pid: &str, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}"));
    let own_user =
        ns("self", "user").map_err(|e| format!("cannot read this process's namespaces: {e}"))?;
    let own_mount =
        ns("self", "mnt").map_err(|e| format!("cannot read this process's namespaces: {e}"))?;
    let pid = child.id().to_string();
    let started = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        match (ns(&pid, "user"), ns(&pid, "mnt")) {
            (Ok(user), _) if user != own_user => return Ok(()),
            // A new mount namespace in the old user namespace: stage 1 could not have a user
            // namespace and went on without one (it reads no byte then).
            (Ok(_), Ok(mount)) if mount != own_mount => {
                return Err("stage 1 has no user namespace".into());
            }
            (Ok(_), Ok(_)) => {}
            (Err(e), _) | (_, Err(e)) => return Err(format!("stage 1 is gone: {e}")),
        }
        if let Ok(Some(_)) = child.try_wait() {
            return Err("stage 1 exited before entering its user namespace".into());
        }
        if started.elapsed() > ENTER_DEADLINE {
            return Err(format!(
                "stage 1 did not enter a user namespace within {} s",
                ENTER_DEADLINE.as_secs()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

fn write_identity(pid: u32) -> Result<(), String> {
    for map in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{map}"), IDENTITY)
            .map_err(|e| format!("cannot write the run's {map} as root: {e}"))?;
    }
    Ok(())
}

/// In stage 1, just after entering the namespace: waits for the parent's byte. `Ok(true)`: the
/// maps are written; `Ok(false)`: map yourself.
pub(crate) fn await_parent() -> std::io::Result<bool> {
    let mut byte = [0u8; 1];
    std::io::stdin().lock().read_exact(&mut byte)?;
    Ok(byte[0] == MAPPED)
}
