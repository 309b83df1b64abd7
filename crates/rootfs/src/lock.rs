//! Advisory locks that give up: `flock` tried without blocking, retried until a deadline.

use std::fs::File;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use crate::error::{Error, Result};

/// Shared (readers) or exclusive (a writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders at once, no exclusive one.
    Shared,
    /// One holder.
    Exclusive,
}

/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Takes the lock on `file` if it is free right now; [`Error::Busy`] if another holds it.
/// `path` is for messages.
pub fn try_lock(file: &File, mode: LockMode, path: &Path) -> Result<()> {
    let operation = match mode {
        LockMode::Shared => FlockOperation::NonBlockingLockShared,
        LockMode::Exclusive => FlockOperation::NonBlockingLockExclusive,
    };
    loop {
        return match rustix::fs::flock(file, operation) {
            Ok(()) => Ok(()),
            Err(Errno::INTR) => continue,
            Err(Errno::WOULDBLOCK) => Err(Error::Busy {
                path: path.to_owned(),
            }),
            Err(errno) => Err(Error::Io {
                action: "lock",
                path: path.to_owned(),
                source: errno.into(),
            }),
        };
    }
}

/// Takes the lock on `file`, waiting at most `deadline` for another holder to let go (tries
/// without blocking, pausing 1 ms, then twice as long each time, at most 50 ms).
pub fn lock(file: &File, mode: LockMode, deadline: Duration, path: &Path) -> Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match try_lock(file, mode, path) {
            Err(Error::Busy { .. }) => {}
            other => return other,
        }
        let waited = started.elapsed();
        if waited >= deadline {
            return Err(Error::LockTimeout {
                path: path.to_owned(),
                waited,
            });
        }
        thread::sleep(pause.min(deadline - waited));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Releases a lock taken on `file` (closing the file releases it too).
pub fn unlock(file: &File, path: &Path) -> Result<()> {
    rustix::fs::flock(file, FlockOperation::NonBlockingUnlock).map_err(|errno| Error::Io {
        action: "unlock",
        path: path.to_owned(),
        source: errno.into(),
    })
}
