//! The run's process tree: signalling it, finding what is left of it, and killing that.
//!
//! The pytest process leads its own process group, and every process it starts stays in that
//! group unless it moves itself out (`setsid`, `setpgid`). Signals go to the whole group with
//! `killpg`. Processes that left the group are found by a per-run marker that Warden puts in the
//! child's environment (`WARDEN_RUN_ID=<random>`), which descendants inherit; on Linux
//! `/proc/<pid>/environ` shows it. A process that both leaves the group and replaces its
//! environment (`exec` with a fresh one) is out of reach: containing that needs a cgroup or a PID
//! namespace, which Warden does not set up.
//!
//! Zombies do not count as alive: they have exited and only wait to be reaped by their parent
//! (or init), which Warden cannot and need not hurry.

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use sha2::{Digest, Sha256};

use crate::evidence::LeakedProcess;

/// The environment variable that marks a run's processes.
pub(crate) const RUN_MARKER_VAR: &str = "WARDEN_RUN_ID";

/// The most leaked processes described in evidence (all are killed regardless).
const MAX_LEAKED_REPORTED: usize = 64;

/// The longest command line kept for a leaked process, in characters.
const MAX_COMMAND_CHARS: usize = 200;

/// A fresh, unguessable-enough run id: unique per run on this machine.
pub(crate) fn new_run_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(nanos.to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let stack_address = &nanos as *const u128 as usize;
    hasher.update(stack_address.to_le_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// A process found alive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Alive {
    pid: i32,
    escaped_group: bool,
}

/// The process group of one run. Dropping it while armed kills everything in it: that is what
/// makes cancelling a run (dropping its future) safe.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: i32,
    marker: Vec<u8>,
    armed: bool,
    /// The group's leader is the sandbox's helper, whose child is the init of the run's own
    /// PID namespace (required, so certainly in force when the run started).
    own_pid_namespace: bool,
}

impl ProcessGroup {
    /// The group led by `pgid`, whose processes carry `RUN_MARKER_VAR=run_id`.
    pub(crate) fn new(pgid: i32, run_id: &str) -> Self {
        ProcessGroup {
            pgid,
            marker: format!("{RUN_MARKER_VAR}={run_id}").into_bytes(),
            armed: true,
            own_pid_namespace: false,
        }
    }

    /// Says that every process of the run but the leader lives in a PID namespace whose init
    /// is the leader's child, and that the namespace was required (the run does not start
    /// without it).
    pub(crate) fn in_own_pid_namespace(mut self) -> Self {
        self.own_pid_namespace = true;
        self
    }

    /// Sends `signal` to the whole group and to every marked process that left it.
    pub(crate) fn signal(&self, signal: Signal) {
        if let Err(e) = killpg(Pid::from_raw(self.pgid), signal)
            && e != nix::errno::Errno::ESRCH
        {
            tracing::warn!(pgid = self.pgid, %signal, error = %e, "could not signal the process group");
        }
        for p in self.alive().into_iter().filter(|p| p.escaped_group) {
            let _ = kill(Pid::from_raw(p.pid), signal);
        }
    }

    /// Kills whatever of the run is still alive after its main process exited, and describes
    /// it. Processes get a moment to finish exiting on their own first; then SIGKILL, repeated
    /// until they are gone or `budget` runs out.
    ///
    /// `leader_exited`: the leader was reaped. In the run's own PID namespace nothing can be
    /// left then, and no `/proc` scan is needed (it read two files of every process on the
    /// machine): the helper waits for the namespace's init, and the kernel kills and reaps
    /// every process of a namespace before its init's exit is reported.
    pub(crate) async fn kill_leftovers(
        &mut self,
        budget: Duration,
        leader_exited: bool,
    ) -> Vec<LeakedProcess> {
        const SETTLE: Duration = Duration::from_millis(50);
        const POLL: Duration = Duration::from_millis(10);
        if leader_exited && self.own_pid_namespace {
            self.armed = false;
            return Vec::new();
        }
        let until = tokio::time::Instant::now() + budget;
        let mut alive = self.alive();
        if !alive.is_empty() {
            tokio::time::sleep(SETTLE.min(budget)).await;
            alive = self.alive();
        }
        let mut leaked: Vec<LeakedProcess> = Vec::new();
        while !alive.is_empty() {
            for p in &alive {
                if leaked.len() < MAX_LEAKED_REPORTED && leaked.iter().all(|l| l.pid != p.pid) {
                    leaked.push(LeakedProcess {
                        pid: p.pid,
                        command: command_line(p.pid),
                        escaped_group: p.escaped_group,
                    });
                }
            }
            self.kill_now(&alive);
            if tokio::time::Instant::now() >= until {
                tracing::error!(
                    pgid = self.pgid,
                    survivors = alive.len(),
                    "processes survived SIGKILL"
                );
                return leaked;
            }
            tokio::time::sleep(POLL).await;
            alive = self.alive();
        }
        self.armed = false;
        leaked
    }

    fn kill_now(&self, alive: &[Alive]) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        for p in alive.iter().filter(|p| p.escaped_group) {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
    }

    /// The run's live processes: members of the group, and marked processes outside it.
    fn alive(&self) -> Vec<Alive> {
        match fs::read_dir("/proc") {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter_map(|pid| self.classify(pid))
                .collect(),
            Err(_) => {
                // No /proc: the group is all that can be seen, and only as a whole.
                let populated = killpg(Pid::from_raw(self.pgid), None).is_ok();
                populated
                    .then_some(Alive {
                        pid: self.pgid,
                        escaped_group: false,
                    })
                    .into_iter()
                    .collect()
            }
        }
    }

    fn classify(&self, pid: i32) -> Option<Alive> {
        let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid pgrp ...`: comm may contain anything, so parse after its
        // last closing parenthesis.
        let close = stat.iter().rposition(|b| *b == b')')?;
        let rest = String::from_utf8_lossy(&stat[close + 1..]).into_owned();
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next()?;
        let _ppid = fields.next()?;
        let pgrp: i32 = fields.next()?.parse().ok()?;
        if matches!(state, "Z" | "X" | "x") {
            return None;
        }
        if pgrp == self.pgid {
            return Some(Alive {
                pid,
                escaped_group: false,
            });
        }
        if pid as u32 == std::process::id() {
            return None;
        }
        let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
        environ
            .split(|b| *b == 0)
            .any(|entry| entry == self.marker.as_slice())
            .then_some(Alive {
                pid,
                escaped_group: true,
            })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.armed {
            let alive = self.alive();
            self.kill_now(&alive);
        }
    }
}

/// The command line of a process, for a person to recognise it.
fn command_line(pid: i32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let joined: String = String::from_utf8_lossy(&raw)
        .split('\0')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if joined.is_empty() {
        return format!("pid {pid}");
    }
    joined.chars().take(MAX_COMMAND_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    #[test]
    fn run_ids_are_distinct() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }

    #[tokio::test]
    async fn leftovers_in_the_group_and_escaped_ones_are_killed() {
        let run_id = new_run_id();
        // A leader that exits at once, a group member that lingers, and one that escapes the
        // group with setsid.
        let mut leader = Command::new("sh")
            .arg("-c")
            .arg("sleep 300 & setsid sleep 301 & exit 0")
            .env(RUN_MARKER_VAR, &run_id)
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = leader.id() as i32;
        leader.wait().unwrap();
        let mut group = ProcessGroup::new(pgid, &run_id);
        // Give setsid a moment to have happened.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let leaked = group.kill_leftovers(Duration::from_secs(2), true).await;
        assert_eq!(leaked.len(), 2, "{leaked:?}");
        assert_eq!(leaked.iter().filter(|l| l.escaped_group).count(), 1);
        assert!(leaked.iter().all(|l| l.command.contains("sleep 30")));
        assert!(group.alive().is_empty());
        assert!(!group.armed);
    }

    #[test]
    fn dropping_an_armed_group_kills_it() {
        let run_id = new_run_id();
        let child = Command::new("sleep")
            .arg("300")
            .env(RUN_MARKER_VAR, &run_id)
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let group = ProcessGroup::new(pgid, &run_id);
        assert_eq!(group.alive().len(), 1);
        drop(group);
        let mut child = child;
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
    }
}
