//! The run's private scratch directory (where pytest writes the results records), held by handle.
//!
//! Its path is in pytest's `sys.argv`, so the code under test can replace what is in it: the
//! report with a FIFO (whose `open` would wait forever) or a link, the directory itself with
//! a link to somewhere else. Warden therefore opens the directory once, before pytest starts,
//! and reads and deletes only through that handle: the report is opened without following a
//! link or waiting and must be a regular file, and cleaning up removes the directory's
//! contents through the handle (links removed, never followed, the work bounded) and then the
//! directory's name only if it is an empty directory.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;

use camino::Utf8PathBuf;
use warden_rootfs::{Dir, Open};

/// The file name pytest writes the results records to (see [`crate::records`]).
const REPORT: &str = "records.jsonl";
/// The directory Python keeps bytecode in when the run cannot have the cache.
const BYTECODE: &str = "pycache";
/// The directory holding the run's `sitecustomize.py` (on `PYTHONPATH`).
const SITE: &str = "site";
/// The file where the run notes the root's sources it compiled (see [`crate::precompile`]).
const WANTED: &str = "bytecode-wanted";
/// At most this many entries are removed when cleaning up (a test can fill the directory; an
/// uncached run's bytecode of a large suite and its dependencies is a few thousand files).
const MAX_REMOVALS: usize = 100_000;

/// A private temporary directory, held open; removed on drop.
#[derive(Debug)]
pub(crate) struct Scratch {
    parent: Dir,
    name: OsString,
    dir: Dir,
    report: Utf8PathBuf,
}

impl Scratch {
    /// Makes a new private directory in the temporary directory (`TMPDIR`, mode 0700).
    pub(crate) fn new() -> Result<Scratch, String> {
        let made = tempfile::Builder::new()
            .prefix("warden-run-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let path = made.keep();
        let held = (|| {
            let name = path.file_name().ok_or("no name")?.to_owned();
            let parent = Dir::open(path.parent().ok_or("no parent")?).map_err(|e| e.to_string())?;
            let dir = parent.open_dir(&name).map_err(|e| e.to_string())?;
            let report = Utf8PathBuf::from_path_buf(path.join(REPORT))
                .map_err(|p| format!("{} is not UTF-8", p.display()))?;
            Ok::<_, String>(Scratch {
                parent,
                name,
                dir,
                report,
            })
        })();
        if held.is_err() {
            let _ = std::fs::remove_dir(&path);
        }
        held
    }

    /// Where pytest is told to write the results records.
    pub(crate) fn report_path(&self) -> &Utf8PathBuf {
        &self.report
    }

    /// A new, empty directory for the run's bytecode (`PYTHONPYCACHEPREFIX`) when it cannot
    /// have the cache: Python must keep bytecode somewhere other than the tree, whose
    /// `__pycache__` it would otherwise also *read*.
    pub(crate) fn bytecode_prefix(&self) -> Result<Utf8PathBuf, String> {
        self.dir
            .create_dir(BYTECODE)
            .map_err(|e| format!("could not create the run's bytecode directory: {e}"))?;
        self.path_of(BYTECODE)
    }

    /// A directory holding `sitecustomize.py` with `contents`, for the run's `PYTHONPATH`: every
    /// Python process of the run (pytest, its xdist workers, the interpreters tests start)
    /// runs it at start-up.
    pub(crate) fn site_dir(&self, contents: &str) -> Result<Utf8PathBuf, String> {
        let failed =
            |e: warden_rootfs::Error| format!("could not write the run's sitecustomize: {e}");
        let site = self.dir.create_dir_all(SITE).map_err(failed)?;
        let mut file = site
            .open_file("sitecustomize.py", Open::CreateNew)
            .map_err(failed)?;
        file.write_all(contents.as_bytes())
            .map_err(|e| format!("could not write the run's sitecustomize: {e}"))?;
        self.path_of(SITE)
    }

    /// The path of `name` in the scratch directory (the report's directory).
    fn path_of(&self, name: &str) -> Result<Utf8PathBuf, String> {
        let dir = self
            .report
            .parent()
            .ok_or("the scratch directory has no path")?;
        Ok(dir.join(name))
    }

    /// Where the run notes the root's sources it compiled.
    pub(crate) fn wanted_path(&self) -> Result<Utf8PathBuf, String> {
        self.path_of(WANTED)
    }

    /// The run's notes of the sources it compiled, if it left a regular file of them.
    pub(crate) fn open_wanted(&self) -> Option<File> {
        self.dir.open_file(WANTED, Open::Read).ok()
    }

    /// Creates the new file `name` in the scratch directory, through its handle.
    pub(crate) fn create(&self, name: &str) -> Result<(File, Utf8PathBuf), String> {
        let file = self
            .dir
            .open_file(name, Open::CreateNew)
            .map_err(|e| e.to_string())?;
        Ok((file, self.path_of(name)?))
    }

    /// Opens the records pytest wrote: `Ok(None)` when there is none, an error (for the
    /// evidence) when something other than a regular file is there.
    pub(crate) fn open_report(&self) -> Result<Option<File>, String> {
        match self.dir.open_file(REPORT, Open::Read) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(format!("the results records were not read: {e}")),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut budget = MAX_REMOVALS;
        if let Err(e) = self.dir.clear(&mut budget, 0) {
            tracing::warn!(error = %e, "the run's scratch directory could not be emptied");
        }
        // Only if the name still holds the directory that was emptied (a swapped-in link or
        // another directory is left alone; an empty one is all `rmdir` can remove anyway).
        let same = match (self.dir.status(), self.parent.status_of(&self.name)) {
            (Ok(ours), Ok(there)) => (ours.dev, ours.ino) == (there.dev, there.ino),
            _ => false,
        };
        if same && let Err(e) = self.parent.remove_dir(&self.name) {
            tracing::warn!(error = %e, "the run's scratch directory could not be removed");
        }
    }
}
