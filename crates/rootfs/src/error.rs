//! What can go wrong, said precisely enough to act on.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe: opening one to read can wait forever for a writer.
    Fifo,
    /// A Unix-domain socket.
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// Something the file system does not name.
    Unknown,
}

impl Kind {
    pub(crate) fn of_mode(mode: u32) -> Kind {
        use rustix::fs::FileType;
        match FileType::from_raw_mode(mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            FileType::CharacterDevice => Kind::CharDevice,
            FileType::BlockDevice => Kind::BlockDevice,
            FileType::Unknown => Kind::Unknown,
        }
    }

    pub(crate) fn of_type(kind: rustix::fs::FileType) -> Kind {
        Kind::of_mode(kind.as_raw_mode())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::File => "regular file",
            Kind::Dir => "directory",
            Kind::Symlink => "symbolic link",
            Kind::Fifo => "named pipe (FIFO)",
            Kind::Socket => "socket",
            Kind::CharDevice => "character device",
            Kind::BlockDevice => "block device",
            Kind::Unknown => "file of unknown kind",
        })
    }
}

/// Why a file under a handle was not reached.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something other than what was expected is there: a link, a FIFO, a device, a socket, or
    /// a file where a directory should be. It was neither followed nor waited on.
    #[error(
        "{} is a {found}, where Warden expects a {expected}; it was not followed or opened: \
         remove it or put a {expected} there",
        path.display()
    )]
    WrongKind {
        /// Where it was found.
        path: PathBuf,
        /// What is there.
        found: Kind,
        /// What was expected.
        expected: Kind,
    },
    /// The relative path is absolute, empty, or has a `..`: it could leave the directory.
    #[error(
        "{} is not a plain relative path (no leading `/`, no `..`); Warden reaches files only \
         beneath a directory it holds",
        path.display()
    )]
    NotPlain {
        /// The path as given.
        path: PathBuf,
    },
    /// Nothing is there.
    #[error("{} does not exist", path.display())]
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A lock stayed held by someone else past the deadline.
    #[error(
        "{} stayed locked by another process for {waited:?}; look for a stuck warden or \
         another program holding it",
        path.display()
    )]
    LockTimeout {
        /// The locked file.
        path: PathBuf,
        /// How long this call waited.
        waited: Duration,
    },
    /// Held by someone else right now (a try without waiting).
    #[error("{} is locked by another process", path.display())]
    Busy {
        /// The locked file.
        path: PathBuf,
    },
    /// The operating system refused.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Whether nothing was found (as opposed to something refused or failing).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether something of the wrong kind (a link, a FIFO, ...) was found and refused.
    pub fn is_wrong_kind(&self) -> bool {
        matches!(self, Error::WrongKind { .. })
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
