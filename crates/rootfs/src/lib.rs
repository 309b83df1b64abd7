//! Reaches files under a directory handle without following links or blocking.
//!
//! Warden reads and writes files in places the code under test can also write: the tree, its
//! own `.warden/` directory, its scratch directory. Opening such a file by name is a trap
//! twice over: the name can be swapped for a symbolic link between a check and the use, so
//! Warden would write wherever the link points (a confused deputy), and it can be swapped for
//! a FIFO, whose `open` waits forever for a writer (a wait without a deadline).
//!
//! This crate's one job is to close both. A [`Dir`] is a directory handle held open from the
//! check to the use; everything beneath it is reached with `openat`-style calls, one plain
//! name at a time, each with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`, so no link is ever
//! followed (not at the end, not on the way) and no open ever waits. A file must then be a
//! regular file and a directory a directory (checked on the open handle with `fstat`);
//! anything else (a link, a FIFO, a socket, a device) is refused with [`Error::WrongKind`],
//! which says what was found and where. Creating, renaming and deleting go through the held
//! handles too (`mkdirat`, `openat(O_CREAT | O_EXCL)`, `renameat`, `unlinkat`), and locks are
//! taken with a deadline ([`lock`]) instead of blocking.
//!
//! ```
//! use std::io::{Read, Write};
//! use warden_rootfs::{Dir, Error, Kind, Open};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = tempfile::tempdir()?;
//! let root = Dir::open(tmp.path())?;
//! let state = root.create_dir_all(".warden")?;
//! state.open_file("ledger.jsonl", Open::Append)?.write_all(b"record\n")?;
//!
//! let mut text = String::new();
//! root.open_file(".warden/ledger.jsonl", Open::Read)?.read_to_string(&mut text)?;
//! assert_eq!(text, "record\n");
//!
//! // A link swapped in is refused, not followed, and the error says what is there.
//! std::os::unix::fs::symlink("/etc", tmp.path().join("elsewhere"))?;
//! let refused = root.open_file("elsewhere/passwd", Open::Read).unwrap_err();
//! assert!(matches!(refused, Error::WrongKind { found: Kind::Symlink, .. }));
//! # Ok(())
//! # }
//! ```

mod dir;
mod error;
mod lock;

pub use dir::{Dir, Entries, Entry, Open, Status, open_read};
pub use error::{Error, Kind, Result};
pub use lock::{LockMode, lock, try_lock, unlock};
