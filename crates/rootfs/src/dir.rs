//! [`Dir`]: a held directory handle and everything reached beneath it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Kind, Result};

/// Flags for every directory opened beneath a handle: never a link, never a wait.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY);

/// Flags for every file opened beneath a handle, whatever the access.
const FILE_FLAGS: OFlags = OFlags::NOFOLLOW
    .union(OFlags::CLOEXEC)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY);

/// Directories nested deeper than this are not descended into by [`Dir::remove_tree`].
const MAX_DEPTH: usize = 128;

/// How a file is opened by [`Dir::open_file`]. There is no truncating open: truncate with
/// [`File::set_len`] once the handle is known to be a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Read an existing file.
    Read,
    /// Read and append, creating the file (mode 0600) if missing.
    Append,
    /// Write (at offset 0, nothing truncated), creating the file (mode 0600) if missing.
    Write,
    /// Create a new file (mode 0600) for writing; an existing entry of any kind is an error.
    CreateNew,
}

impl Open {
    fn flags(self) -> OFlags {
        FILE_FLAGS
            | match self {
                Open::Read => OFlags::RDONLY,
                Open::Append => OFlags::RDWR | OFlags::APPEND | OFlags::CREATE,
                Open::Write => OFlags::WRONLY | OFlags::CREATE,
                Open::CreateNew => OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
            }
    }
}

/// The status of an entry, read without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// What it is.
    pub kind: Kind,
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (and file type bits).
    pub mode: u32,
    /// Modification time: seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Status change time: seconds and nanoseconds.
    pub ctime: (i64, i64),
}

impl Status {
    fn of(stat: &rustix::fs::Stat) -> Status {
        #[allow(clippy::unnecessary_cast)]
        Status {
            kind: Kind::of_mode(stat.st_mode as u32),
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            size: stat.st_size as u64,
            mode: stat.st_mode as u32,
            mtime: (stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime: (stat.st_ctime as i64, stat.st_ctime_nsec as i64),
        }
    }

    /// The status of an open file.
    pub fn of_file(file: &File) -> std::io::Result<Status> {
        Ok(Status::of(&rustix::fs::fstat(file)?))
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name in the directory.
    pub name: OsString,
    /// What it is (never followed).
    pub kind: Kind,
}

/// A directory handle, held open: everything reached through it stays beneath the directory
/// it was opened on, wherever that directory is moved and whatever is swapped in at its name.
///
/// Cloning is cheap and shares the handle. The path is kept for messages only; no operation
/// uses it after the handle is open.
#[derive(Debug, Clone)]
pub struct Dir {
    fd: Arc<OwnedFd>,
    path: PathBuf,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Dir {
    /// Opens the directory at `path` as the caller names it: links on the way are followed
    /// (the path is the caller's, not the tree's). It must be a directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Dir> {
        let path = path.as_ref();
        let flags = DIR_FLAGS.difference(OFlags::NOFOLLOW);
        match rustix::fs::openat(rustix::fs::CWD, path, flags, Mode::empty()) {
            Ok(fd) => Ok(Dir::held(fd, path.to_owned())),
            Err(errno) => Err(refusal(rustix::fs::CWD, path, path, errno, Kind::Dir)),
        }
    }

    /// Opens the absolute `path` component by component from `/`, refusing a link anywhere on
    /// the way and at the end; with `create`, makes missing directories (mode 0700).
    pub fn open_unlinked(path: impl AsRef<Path>, create: bool) -> Result<Dir> {
        let path = path.as_ref();
        let Ok(rel) = path.strip_prefix("/") else {
            return Err(Error::NotPlain {
                path: path.to_owned(),
            });
        };
        let top = Dir::open("/")?;
        if create {
            top.create_dir_all(rel)
        } else {
            top.open_dir(rel)
        }
    }

    fn held(fd: OwnedFd, path: PathBuf) -> Dir {
        Dir {
            fd: Arc::new(fd),
            path,
        }
    }

    /// The path this handle was opened at (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The status of the directory itself.
    pub fn status(&self) -> Result<Status> {
        rustix::fs::fstat(self)
            .map(|s| Status::of(&s))
            .map_err(|e| io("inspect", &self.path, e))
    }

    /// Flushes the directory to disk (so a file just made in it survives a crash).
    pub fn sync(&self) -> Result<()> {
        rustix::fs::fsync(self).map_err(|e| io("sync", &self.path, e))
    }

    /// Opens the directory `rel` beneath this one (an empty or `.` path is this directory).
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> Result<Dir> {
        let rel = rel.as_ref();
        let parts = plain(rel)?;
        let mut here = self.clone();
        for part in parts {
            here = here.child(part)?;
        }
        Ok(here)
    }

    /// Opens the directory `name` (one plain name) directly in this one.
    fn child(&self, name: &OsStr) -> Result<Dir> {
        let path = self.path.join(name);
        match rustix::fs::openat(self, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Dir::held(fd, path)),
            Err(errno) => Err(refusal(self, name, &path, errno, Kind::Dir)),
        }
    }

    /// Makes the directory `name` (one plain name, mode 0700) in this one. `Ok(true)` when it
    /// was made, `Ok(false)` when a directory is already there.
    pub fn create_dir(&self, name: impl AsRef<Path>) -> Result<bool> {
        let (parent, name, path) = self.parent_of(name.as_ref())?;
        match rustix::fs::mkdirat(&parent, name, Mode::RWXU) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => {
                parent.child(name)?;
                Ok(false)
            }
            Err(errno) => Err(io("create the directory", &path, errno)),
        }
    }

    /// Opens the directory `rel` beneath this one, making each missing directory on the way
    /// (mode 0700). An existing entry that is not a directory is refused, never followed.
    pub fn create_dir_all(&self, rel: impl AsRef<Path>) -> Result<Dir> {
        let mut here = self.clone();
        for part in plain(rel.as_ref())? {
            match rustix::fs::mkdirat(&here, part, Mode::RWXU) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(errno) => return Err(io("create the directory", &here.path.join(part), errno)),
            }
            here = here.child(part)?;
        }
        Ok(here)
    }

    /// Opens the regular file `rel` beneath this one. Neither the file nor any directory on
    /// the way may be a link; a FIFO, socket or device is refused without waiting on it.
    pub fn open_file(&self, rel: impl AsRef<Path>, how: Open) -> Result<File> {
        let (parent, name, path) = self.parent_of(rel.as_ref())?;
        let fd = match rustix::fs::openat(&parent, name, how.flags(), Mode::RUSR | Mode::WUSR) {
            Ok(fd) => fd,
            Err(Errno::EXIST) if how == Open::CreateNew => {
                return Err(io("create", &path, Errno::EXIST));
            }
            Err(errno) => return Err(refusal(&parent, name, &path, errno, Kind::File)),
        };
        regular(fd, &path)
    }

    /// The status of `rel` beneath this one, not following a link at its end (nor anywhere
    /// on the way).
    pub fn status_of(&self, rel: impl AsRef<Path>) -> Result<Status> {
        let (parent, name, path) = self.parent_of(rel.as_ref())?;
        match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Status::of(&stat)),
            Err(Errno::NOENT) => Err(Error::NotFound { path }),
            Err(errno) => Err(io("inspect", &path, errno)),
        }
    }

    /// The target text of the link `rel` beneath this one.
    pub fn read_link(&self, rel: impl AsRef<Path>) -> Result<OsString> {
        let (parent, name, path) = self.parent_of(rel.as_ref())?;
        match rustix::fs::readlinkat(&parent, name, Vec::new()) {
            Ok(target) => Ok(OsStr::from_bytes(target.as_bytes()).to_owned()),
            Err(Errno::NOENT) => Err(Error::NotFound { path }),
            Err(errno) => Err(io("read the link", &path, errno)),
        }
    }

    /// The entries of this directory (without `.` and `..`), each with its kind, never
    /// following a link.
    pub fn entries(&self) -> Result<Entries<'_>> {
        let inner = rustix::fs::Dir::read_from(self).map_err(|e| io("list", &self.path, e))?;
        Ok(Entries { dir: self, inner })
    }

    /// Removes the file, link or other non-directory `rel` beneath this one. A missing entry
    /// is not an error.
    pub fn remove_file(&self, rel: impl AsRef<Path>) -> Result<()> {
        let (parent, name, path) = self.parent_of(rel.as_ref())?;
        match rustix::fs::unlinkat(&parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(errno) => Err(io("remove", &path, errno)),
        }
    }

    /// Removes the empty directory `rel` beneath this one. A missing entry is not an error; a
    /// link or a non-empty directory is.
    pub fn remove_dir(&self, rel: impl AsRef<Path>) -> Result<()> {
        let (parent, name, path) = self.parent_of(rel.as_ref())?;
        match rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(errno) => Err(io("remove the directory", &path, errno)),
        }
    }

    /// Removes `rel` beneath this one with everything under it, through handles only (a link
    /// inside is removed, never followed). At most `budget` entries are removed; past that,
    /// or past a depth of 128, the rest stays and the call fails.
    pub fn remove_tree(&self, rel: impl AsRef<Path>, budget: &mut usize) -> Result<()> {
        let (parent, name, path) = self.parent_of(rel.as_ref())?;
        match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => return Ok(()),
            Err(errno) => return Err(io("inspect", &path, errno)),
            Ok(stat) if Status::of(&stat).kind != Kind::Dir => {
                return parent.remove_file(name);
            }
            Ok(_) => {}
        }
        let dir = parent.child(name)?;
        dir.clear(budget, 0)?;
        parent.remove_dir(name)
    }

    /// Removes everything in this directory (not the directory itself); see
    /// [`Dir::remove_tree`] for the bounds.
    pub fn clear(&self, budget: &mut usize, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(io("clear (too deep)", &self.path, Errno::LOOP));
        }
        // Collected first: removing while listing can skip entries.
        let mut names = Vec::new();
        for entry in self.entries()? {
            let entry = entry?;
            if *budget == 0 {
                return Err(io("clear (too many entries)", &self.path, Errno::NOSPC));
            }
            *budget -= 1;
            names.push(entry);
        }
        for entry in names {
            if entry.kind == Kind::Dir {
                let sub = self.child(&entry.name)?;
                sub.clear(budget, depth + 1)?;
                self.remove_dir(&entry.name)?;
            } else {
                self.remove_file(&entry.name)?;
            }
        }
        Ok(())
    }

    /// Renames `from` (beneath this directory) to `to` (beneath `to_dir`), replacing what is
    /// at `to` if it is not a directory. Links at either name are renamed or replaced, never
    /// followed.
    pub fn rename(&self, from: impl AsRef<Path>, to_dir: &Dir, to: impl AsRef<Path>) -> Result<()> {
        let (from_parent, from_name, from_path) = self.parent_of(from.as_ref())?;
        let (to_parent, to_name, _) = to_dir.parent_of(to.as_ref())?;
        rustix::fs::renameat(&from_parent, from_name, &to_parent, to_name)
            .map_err(|e| io("rename", &from_path, e))
    }

    /// The directory holding the last component of `rel` (reached without links), that
    /// component, and the full path for messages.
    fn parent_of<'a>(&self, rel: &'a Path) -> Result<(Dir, &'a OsStr, PathBuf)> {
        let mut parts = plain(rel)?;
        let Some(name) = parts.pop() else {
            return Err(Error::NotPlain {
                path: rel.to_owned(),
            });
        };
        let mut here = self.clone();
        for part in parts {
            here = here.child(part)?;
        }
        let path = here.path.join(name);
        Ok((here, name, path))
    }
}

/// The entries of a directory; see [`Dir::entries`].
pub struct Entries<'a> {
    dir: &'a Dir,
    inner: rustix::fs::Dir,
}

impl std::fmt::Debug for Entries<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entries")
            .field("dir", &self.dir.path)
            .finish()
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            let entry = match self.inner.next()? {
                Ok(entry) => entry,
                Err(errno) => return Some(Err(io("list", &self.dir.path, errno))),
            };
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let mut kind = Kind::of_type(entry.file_type());
            if kind == Kind::Unknown {
                // Some file systems do not say in the listing; ask without following.
                kind = match rustix::fs::statat(self.dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => Status::of(&stat).kind,
                    Err(Errno::NOENT) => continue,
                    Err(errno) => {
                        return Some(Err(io("inspect", &self.dir.path.join(name), errno)));
                    }
                };
            }
            return Some(Ok(Entry {
                name: name.to_owned(),
                kind,
            }));
        }
    }
}

/// Opens the regular file at `path` for reading without waiting on it. With `follow`, links
/// are followed (the caller trusts where they lead, e.g. a configuration file a tool would
/// read anyway); without, the file itself must not be a link (directories on the way are the
/// caller's path and are followed). Either way a FIFO, socket or device is refused.
pub fn open_read(path: impl AsRef<Path>, follow: bool) -> Result<File> {
    let path = path.as_ref();
    let flags = if follow {
        Open::Read.flags().difference(OFlags::NOFOLLOW)
    } else {
        Open::Read.flags()
    };
    match rustix::fs::openat(rustix::fs::CWD, path, flags, Mode::empty()) {
        Ok(fd) => regular(fd, path),
        Err(errno) => Err(refusal(rustix::fs::CWD, path, path, errno, Kind::File)),
    }
}

/// Checks that `fd` is a regular file and makes it blocking again (it was opened without
/// waiting, which only matters for the kinds refused here).
fn regular(fd: OwnedFd, path: &Path) -> Result<File> {
    let stat = rustix::fs::fstat(&fd).map_err(|e| io("inspect", path, e))?;
    let found = Status::of(&stat).kind;
    if found != Kind::File {
        return Err(Error::WrongKind {
            path: path.to_owned(),
            found,
            expected: Kind::File,
        });
    }
    let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| io("inspect", path, e))?;
    rustix::fs::fcntl_setfl(&fd, flags.difference(OFlags::NONBLOCK))
        .map_err(|e| io("configure", path, e))?;
    Ok(File::from(fd))
}

/// The plain components of `rel`: `.` dropped; `..`, a root or an empty path refused.
fn plain(rel: &Path) -> Result<Vec<&OsStr>> {
    let mut parts = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::NotPlain {
                    path: rel.to_owned(),
                });
            }
        }
    }
    Ok(parts)
}

/// Turns a failed open of `name` in `dir` into an error that says what was found there.
fn refusal<Fd: AsFd, N: rustix::path::Arg + Copy>(
    dir: Fd,
    name: N,
    path: &Path,
    errno: Errno,
    expected: Kind,
) -> Error {
    if errno == Errno::NOENT {
        return Error::NotFound {
            path: path.to_owned(),
        };
    }
    // A link met with O_NOFOLLOW (ELOOP), a non-directory met with O_DIRECTORY (ENOTDIR), a
    // directory opened as a file (EISDIR), a FIFO without reader or a socket (ENXIO): say
    // what is there. Asked without following, so this cannot wait either.
    if matches!(
        errno,
        Errno::LOOP | Errno::NOTDIR | Errno::ISDIR | Errno::NXIO
    ) && let Ok(stat) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
    {
        let found = Status::of(&stat).kind;
        if found != expected {
            return Error::WrongKind {
                path: path.to_owned(),
                found,
                expected,
            };
        }
    }
    io("open", path, errno)
}

fn io(action: &'static str, path: &Path, errno: Errno) -> Error {
    Error::Io {
        action,
        path: path.to_owned(),
        source: errno.into(),
    }
}
