//! A root run's user namespace, made by the init stage and mapped by stage 1 (see
//! [`Namespaced::user_by_init`](crate::mounts::Namespaced)): a namespace can map only its
//! creator's own id unless a process of the parent namespace writes the maps, and stage 1 is
//! that process. The two stages talk through two FIFOs in the helper's private directory
//! (beside the status file, outside every tree the run may reach): blocking reads, so neither
//! stage spins while the other starts.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode;

use crate::config::Status;
use crate::mounts::{Ids, Ranges};

/// Init to stage 1: `y` (in a new user namespace, waiting for its maps) or `n` (none).
const READY: &str = "userns-ready";
/// Stage 1 to init: `m` once the maps are written.
const MAPPED: &str = "userns-mapped";
/// How long stage 1 waits for the init stage, looking whether it is still alive this often.
const WAIT: Duration = Duration::from_secs(5);
const LOOK: Duration = Duration::from_millis(50);

fn paths(status_file: &Path) -> (PathBuf, PathBuf) {
    let dir = status_file.parent().unwrap_or(Path::new("/"));
    (dir.join(READY), dir.join(MAPPED))
}

fn open(path: &Path, flags: OFlag) -> std::io::Result<File> {
    let fd = nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())?;
    Ok(File::from(fd))
}

/// Stage 1's ends of the channel, made before the init stage starts. Both opened
/// read-write, so that neither open blocks and the init stage's opens never wait.
pub(crate) struct Parent {
    ready: File,
    mapped: File,
}

impl Parent {
    /// Makes the FIFOs beside `status_file`.
    pub(crate) fn create(status_file: &Path) -> std::io::Result<Parent> {
        let (ready, mapped) = paths(status_file);
        for fifo in [&ready, &mapped] {
            // A caller may reuse its directory for several runs.
            match std::fs::remove_file(fifo) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            nix::unistd::mkfifo(fifo.as_path(), Mode::S_IRUSR | Mode::S_IWUSR)?;
        }
        Ok(Parent {
            ready: open(&ready, OFlag::O_RDWR)?,
            mapped: open(&mapped, OFlag::O_RDWR)?,
        })
    }

    /// Waits for the init stage `pid` to say it has its user namespace, maps every id of
    /// `ids` into it (through `host_proc`, the host's `/proc`, opened before the init stage
    /// mounted the run's over it) and tells it so. Returns early if it has no namespace or is
    /// gone.
    pub(crate) fn map(mut self, host_proc: &File, pid: u32, ids: &Ids) -> std::io::Result<()> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        let deadline = Instant::now() + WAIT;
        loop {
            let mut fds = [PollFd::new(self.ready.as_fd(), PollFlags::POLLIN)];
            let look = PollTimeout::try_from(LOOK).unwrap_or(PollTimeout::NONE);
            if poll(&mut fds, look)? > 0 {
                break;
            }
            let alive = waitid(
                Id::Pid(nix::unistd::Pid::from_raw(pid as i32)),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            );
            if !matches!(alive, Ok(WaitStatus::StillAlive)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        }
        let mut said = [0u8; 1];
        self.ready.read_exact(&mut said)?;
        if said != *b"y" {
            return Ok(());
        }
        let map = |ranges: &Ranges| {
            ranges
                .iter()
                .map(|(first, count)| format!("{first} {first} {count}\n"))
                .collect::<String>()
        };
        for (file, ranges) in [("gid_map", &ids.gids), ("uid_map", &ids.uids)] {
            let text = map(ranges);
            let fd = nix::fcntl::openat(
                host_proc,
                format!("{pid}/{file}").as_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            // Each map in one write, as the kernel requires.
            if File::from(fd).write(text.as_bytes())? != text.len() {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
        }
        self.mapped.write_all(b"m")
    }
}

/// The init stage's side: a new user namespace, then a wait for stage 1's maps. Run it after
/// whatever needs the host's root (the PID namespace's `pid_max`, mounting `/proc`).
pub(crate) fn enter_mapped_by_parent(status_file: &Path, status: &mut Status) {
    let (ready, mapped) = paths(status_file);
    // Opened first: until its maps are written this process is nobody in its namespace, and
    // may not open root's FIFOs.
    let channel =
        open(&ready, OFlag::O_WRONLY).and_then(|r| Ok((r, open(&mapped, OFlag::O_RDONLY)?)));
    let (mut ready, mut mapped) = match channel {
        Ok(ends) => ends,
        Err(e) => {
            status.missing.push(format!(
                "a user namespace (the helper's stages cannot talk: {e})"
            ));
            return;
        }
    };
    let entered = unshare(CloneFlags::CLONE_NEWUSER);
    let told = ready.write_all(if entered.is_ok() { b"y" } else { b"n" });
    if let Err(e) = entered {
        status.missing.push(format!(
            "a user namespace ({e}; unprivileged user namespaces may be disabled: sysctl user.max_user_namespaces / kernel.unprivileged_userns_clone)"
        ));
        return;
    }
    let mut answer = [0u8; 1];
    match told.and_then(|()| mapped.read_exact(&mut answer)) {
        Ok(()) if answer == *b"m" => status.namespaces.insert(0, "user".into()),
        _ => status
            .missing
            .push("uid/gid maps for the user namespace: stage 1 did not write them".into()),
    }
}
