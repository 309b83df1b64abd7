//! The evidence ledger: an append-only, hash-chained JSONL file of verification reports.
//!
//! # Record format
//!
//! One record per line, UTF-8 JSON, fields in this order:
//!
//! ```text
//! {"version":1,"seq":N,"ts_ms":T,"prev":"<64 hex>","mission":"<id>","report":{...},"hash":"<64 hex>"}\n
//! ```
//!
//! - `version`: the record format, [`LEDGER_VERSION`].
//! - `seq`: 1 for the first record, then +1 per record; in an intact ledger it equals the line
//!   number.
//! - `ts_ms`: when the record was appended, Unix time in milliseconds (informational; clocks
//!   move backwards, so it is not checked).
//! - `prev`: the previous record's `hash`; [`GENESIS_HASH`] (64 zeros) for the first record.
//! - `mission` (only when there is one): the id of the mission the verification belonged to,
//!   so that a mission's spent test-time budget can be summed across processes
//!   ([`Ledger::mission_spent`]). Records written without it (older ones too) have none; the
//!   hash covers it like every other byte of the body.
//! - `report`: the contract's `verify` document with the captured stream `text` emptied to keep
//!   records compact; each stream's `sha256`, `total_bytes` and `truncated` stay, so the
//!   record still commits to the full output. The per-test outcomes, the fingerprint, the
//!   flaky tests, the class and the attempts stay too: they are what `ledger stats` and the
//!   classifier's history need.
//! - `hash`: lower-case hex SHA-256 of the record's *body*: the exact bytes of the line from
//!   its opening `{` up to (not including) the `,"hash":` that ends it, followed by `}`. In
//!   other words, the record serialised compactly without its `hash` field, byte for byte as
//!   written, so any change to any byte of the body changes the hash, and a verifier needs no
//!   canonicalisation of its own (fields it does not know about are covered too).
//!
//! # Appending
//!
//! [`Ledger::append`] opens the file with `O_APPEND`, takes an exclusive lock (`flock`, with a
//! deadline), reads only the file's tail to find the last record's `seq` and `hash`, writes the
//! whole new line with one `write_all`, `fsync`s and unlocks. Concurrent writers (threads or
//! processes) therefore never interleave, and a crash mid-append leaves at most a *torn* final
//! line: bytes after the last newline. The next append cuts a torn tail off before writing (it
//! is the remains of a record that was never completely written, which is the one record a
//! crash may lose) and logs how many bytes it discarded. A damaged last *complete* line is not
//! repaired: appending refuses, because chaining onto it would hide the damage.
//!
//! # Verifying
//!
//! [`Ledger::verify`] streams the file line by line (memory bounded by [`MAX_RECORD_BYTES`])
//! and checks that each line is a record, that its hash matches its body, that `seq` counts up
//! by one and that `prev` is the previous record's hash. It reports the first problem only,
//! naming its line: [`ChainReport::Corrupt`] for a complete line that is not a record,
//! [`ChainReport::Tampered`] for a record that does not fit the chain, and
//! [`ChainReport::TornTail`] for a final line without its newline (a crash mid-append), kept
//! distinct from tampering. Deleting whole records from the *end* cannot be detected by a hash
//! chain alone; compare the head hash [`ChainReport::Intact`] names with a copy kept elsewhere
//! to catch that.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_classifier::HistoryRun;
use warden_rootfs::{Dir, LockMode, Open};
use warden_taxonomy::VerifyReport;

use crate::warden_dir;

/// The ledger's default location, relative to the repository root.
pub const DEFAULT_LEDGER_PATH: &str = ".warden/ledger.jsonl";

/// The record format version this crate writes and reads.
pub const LEDGER_VERSION: u32 = 1;

/// The `prev` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest line (newline included) the ledger writes or reads, so memory stays bounded.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// How long an append or a verification waits for another writer's lock by default.
pub const DEFAULT_LOCK_DEADLINE: Duration = Duration::from_secs(10);

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_FIELD: &[u8] = b",\"hash\":\"";
const HASH_HEX_LEN: usize = 64;
const HASH_SUFFIX_LEN: usize = HASH_FIELD.len() + HASH_HEX_LEN + 2;

/// One record of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The record format, [`LEDGER_VERSION`].
    pub version: u32,
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it was appended, Unix time in milliseconds.
    pub ts_ms: u64,
    /// The previous record's hash ([`GENESIS_HASH`] for the first).
    pub prev: String,
    /// The mission the verification belonged to, if it was given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission: Option<String>,
    /// The verification's report, captured stream text left out.
    pub report: VerifyReport,
    /// SHA-256 of the record's body (see the module documentation).
    pub hash: String,
}

/// The record as hashed and written: everything but its own hash, in the documented order.
#[derive(Serialize)]
struct Body<'a> {
    version: u32,
    seq: u64,
    ts_ms: u64,
    prev: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mission: Option<&'a str>,
    report: &'a VerifyReport,
}

/// The fields appending needs from the last record; the report is parsed only to be skipped.
#[derive(Deserialize)]
struct Head {
    version: u32,
    seq: u64,
}

/// The result of checking a ledger's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChainReport {
    /// Every line is a record and the chain holds (an empty or missing file has 0 records).
    Intact {
        /// Number of records.
        records: u64,
        /// The last record's hash; `None` when there are no records.
        head: Option<String>,
    },
    /// A record parses but does not fit the chain: its content, position or link was changed.
    Tampered {
        /// 1-based line number of the first bad record.
        line: u64,
        /// The `seq` that record claims.
        seq: u64,
        /// What does not fit.
        problem: Tamper,
    },
    /// A complete line that is not a ledger record at all.
    Corrupt {
        /// 1-based line number.
        line: u64,
        /// Why it is not a record.
        reason: String,
    },
    /// The final line has no newline: an append was interrupted (a crash). The records before
    /// it are intact; the next append removes the torn bytes.
    TornTail {
        /// Intact records before the torn line.
        records: u64,
        /// 1-based line number of the torn line.
        line: u64,
        /// Bytes in the torn line.
        bytes: u64,
    },
}

impl ChainReport {
    /// Whether the whole file is an intact chain.
    pub fn is_intact(&self) -> bool {
        matches!(self, ChainReport::Intact { .. })
    }
}

impl fmt::Display for ChainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainReport::Intact { records, head } => match head {
                Some(head) => write!(f, "intact: {records} records, head {head}"),
                None => write!(f, "intact: no records"),
            },
            ChainReport::Tampered { line, seq, problem } => {
                write!(f, "tampered: line {line} (record seq {seq}): {problem}")
            }
            ChainReport::Corrupt { line, reason } => {
                write!(f, "corrupt: line {line} is not a ledger record: {reason}")
            }
            ChainReport::TornTail {
                records,
                line,
                bytes,
            } => write!(
                f,
                "torn tail: line {line} ({bytes} bytes) was cut short by an interrupted append; \
                 the {records} records before it are intact"
            ),
        }
    }
}

/// How a parsable record breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tamper {
    /// The record's content does not match its hash.
    HashMismatch {
        /// The hash the record carries.
        stored: String,
        /// The hash of its body.
        computed: String,
    },
    /// The record is not the next in sequence: one was removed, inserted or moved.
    SequenceBreak {
        /// The `seq` the chain expects here.
        expected: u64,
        /// The `seq` the record has.
        found: u64,
    },
    /// The record's `prev` is not the previous record's hash.
    BrokenLink {
        /// The previous record's hash.
        expected: String,
        /// The record's `prev`.
        found: String,
    },
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tamper::HashMismatch { stored, computed } => write!(
                f,
                "its content does not match its hash (stored {stored}, computed {computed})"
            ),
            Tamper::SequenceBreak { expected, found } => write!(
                f,
                "expected seq {expected} but found {found} (a record was removed, inserted or \
                 moved)"
            ),
            Tamper::BrokenLink { expected, found } => write!(
                f,
                "its prev {found} is not the previous record's hash {expected}"
            ),
        }
    }
}

/// Why the ledger could not be read or written (problems *in* the chain are a [`ChainReport`]).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The file system refused.
    #[error("cannot {action} the ledger {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The ledger file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Something other than a regular file (a link, a FIFO, ...) is where the ledger or its
    /// directory should be; it was not followed or waited on.
    #[error("cannot use the ledger {}: {source}", path.display())]
    Refused {
        /// The ledger file.
        path: PathBuf,
        /// What was found, and where.
        #[source]
        source: warden_rootfs::Error,
    },
    /// Another writer held the lock for too long.
    #[error(
        "the ledger {} stayed locked by another writer for {waited:?}; check for a stuck warden \
         process",
        path.display()
    )]
    LockTimeout {
        /// The ledger file.
        path: PathBuf,
        /// How long this call waited.
        waited: Duration,
    },
    /// A reader met a break in the chain; nothing after it can be trusted.
    #[error(
        "the ledger {} is damaged ({report}); run `warden ledger verify {}` and repair or move \
         it aside",
        path.display(),
        path.display()
    )]
    Damaged {
        /// The ledger file.
        path: PathBuf,
        /// The first problem found.
        report: ChainReport,
    },
    /// The last complete record is not sound, so an append cannot chain onto it.
    #[error(
        "cannot append to the ledger {}: its last record (at byte {offset}) is damaged \
         ({reason}); run `warden ledger verify {}` and repair or move the ledger aside",
        path.display(),
        path.display()
    )]
    DamagedTail {
        /// The ledger file.
        path: PathBuf,
        /// Where the last record starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A record would exceed [`MAX_RECORD_BYTES`].
    #[error(
        "the record is {bytes} bytes, more than the ledger's limit of {limit}; the report has too \
         many test results to store"
    )]
    RecordTooLarge {
        /// Size of the record.
        bytes: usize,
        /// [`MAX_RECORD_BYTES`].
        limit: usize,
    },
    /// The report could not be serialised.
    #[error("cannot serialise the record: {0}")]
    Serialize(#[source] serde_json::Error),
}

/// An evidence ledger at a path. Cheap to create; every operation opens the file anew, never
/// following a link at its name and never waiting on it: anything but a regular file there (a
/// FIFO, a link, a device) is [`LedgerError::Refused`].
///
/// A ledger [`beneath`](Ledger::beneath) a directory handle (the root, as a mission keeps its
/// ledger) reaches its file from that handle without following a link anywhere on the way,
/// so a `.warden` swapped for a link cannot send a record outside the root.
#[derive(Debug, Clone)]
pub struct Ledger {
    place: Place,
    lock_deadline: Duration,
}

/// Where the ledger file is reached from.
#[derive(Debug, Clone)]
enum Place {
    /// A path as the caller names it: its directory is opened as named (links followed, the
    /// caller's choice), the file itself without following.
    Path(PathBuf),
    /// A plain relative path beneath a held directory, no link followed anywhere.
    Beneath {
        dir: Dir,
        rel: PathBuf,
        /// `dir`'s path joined with `rel`, for messages.
        path: PathBuf,
    },
}

impl Ledger {
    /// A ledger stored at `path` (created, with its directory, on the first append).
    pub fn new(path: impl Into<PathBuf>) -> Ledger {
        Ledger {
            place: Place::Path(path.into()),
            lock_deadline: DEFAULT_LOCK_DEADLINE,
        }
    }

    /// A ledger stored at `rel` (plain names only, no `..`) beneath the directory `dir`,
    /// reached from that handle without following a link; missing directories are made on
    /// the first append (with a `.gitignore` of `*` when that makes Warden's `.warden`).
    pub fn beneath(dir: Dir, rel: impl Into<PathBuf>) -> Ledger {
        let rel = rel.into();
        Ledger {
            place: Place::Beneath {
                path: dir.path().join(&rel),
                dir,
                rel,
            },
            lock_deadline: DEFAULT_LOCK_DEADLINE,
        }
    }

    /// The same ledger, waiting at most `deadline` for another writer's lock.
    pub fn with_lock_deadline(self, deadline: Duration) -> Ledger {
        Ledger {
            lock_deadline: deadline,
            ..self
        }
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        match &self.place {
            Place::Path(path) | Place::Beneath { path, .. } => path,
        }
    }

    /// Opens the ledger file `how`; `Ok(None)` when it does not exist (never for a creating
    /// open). Appending makes the missing directories first.
    fn open(&self, how: Open) -> Result<Option<File>, LedgerError> {
        let creating = how != Open::Read;
        let opened = match &self.place {
            Place::Path(path) => {
                let parent = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let Some(name) = path.file_name() else {
                    return Err(self.io("open", io::Error::from(io::ErrorKind::InvalidInput)));
                };
                if creating {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| self.io("create the directory of", e))?;
                }
                Dir::open(parent).and_then(|dir| dir.open_file(name, how))
            }
            Place::Beneath { dir, rel, .. } => {
                if creating {
                    self.make_directories(dir, rel)?;
                }
                dir.open_file(rel, how)
            }
        };
        match opened {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.is_not_found() && !creating => Ok(None),
            Err(source) => Err(self.refused(source)),
        }
    }

    /// Makes the directories of `rel` beneath `dir`; Warden's own `.warden` at the top gets
    /// its `.gitignore` when made here.
    fn make_directories(&self, dir: &Dir, rel: &Path) -> Result<(), LedgerError> {
        let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) else {
            return Ok(());
        };
        let mut components = parent.components();
        if components.next() == Some(Component::Normal(warden_dir::NAME.as_ref())) {
            warden_dir::ensure(dir)
                .and_then(|warden| warden.create_dir_all(components.as_path()))
                .map_err(|e| self.refused(e))?;
        } else {
            dir.create_dir_all(parent).map_err(|e| self.refused(e))?;
        }
        Ok(())
    }

    /// Syncs the directory holding the ledger, so a new file's entry reaches the disk.
    fn sync_directory(&self) -> Result<(), LedgerError> {
        let synced = match &self.place {
            Place::Path(path) => {
                let parent = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                Dir::open(parent).and_then(|d| d.sync())
            }
            Place::Beneath { dir, rel, .. } => match rel.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => {
                    dir.open_dir(parent).and_then(|d| d.sync())
                }
                _ => dir.sync(),
            },
        };
        synced.map_err(|e| self.refused(e))
    }

    fn refused(&self, source: warden_rootfs::Error) -> LedgerError {
        LedgerError::Refused {
            path: self.path().to_owned(),
            source,
        }
    }

    /// Appends one verification's report as the next record and returns the record.
    ///
    /// The stored report has its captured stream `text` emptied (hashes and sizes stay).
    /// Removes a torn final line first (see the module documentation); refuses with
    /// [`LedgerError::DamagedTail`] when the last complete line is not a sound record.
    pub fn append(&self, report: &VerifyReport) -> Result<LedgerEntry, LedgerError> {
        self.append_with(report, None)
    }

    /// Like [`Ledger::append`], recording the id of the mission the verification belonged to
    /// (`None` writes exactly what [`Ledger::append`] writes).
    pub fn append_with(
        &self,
        report: &VerifyReport,
        mission: Option<&str>,
    ) -> Result<LedgerEntry, LedgerError> {
        let mut report = report.clone();
        report.stdout.text.clear();
        report.stderr.text.clear();

        let Some(mut file) = self.open(Open::Append)? else {
            return Err(self.io("open", io::Error::from(io::ErrorKind::NotFound)));
        };
        self.lock(&file, Exclusive::Yes)?;
        let result = self.append_locked(&mut file, report, mission);
        // Closing the file releases the lock even if this fails.
        let unlocked = warden_rootfs::unlock(&file, self.path()).map_err(|e| self.refused(e));
        let entry = result?;
        unlocked?;
        Ok(entry)
    }

    fn append_locked(
        &self,
        file: &mut File,
        report: VerifyReport,
        mission: Option<&str>,
    ) -> Result<LedgerEntry, LedgerError> {
        let mut len = file.metadata().map_err(|e| self.io("inspect", e))?.len();
        let was_empty = len == 0;
        let end = last_newline_before(file, len).map_err(|e| self.io("read", e))?;
        let complete = end.map_or(0, |at| at + 1);
        if complete < len {
            tracing::warn!(
                ledger = %self.path().display(),
                discarded_bytes = len - complete,
                "removing a torn final line left by an interrupted append"
            );
            file.set_len(complete)
                .map_err(|e| self.io("cut the torn tail of", e))?;
            len = complete;
        }
        let (seq, prev) = match end {
            None => (1, GENESIS_HASH.to_owned()),
            Some(newline) => {
                let (head, hash) = self.last_record(file, newline)?;
                (head.seq + 1, hash)
            }
        };

        let ts_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let body = serde_json::to_vec(&Body {
            version: LEDGER_VERSION,
            seq,
            ts_ms,
            prev: &prev,
            mission,
            report: &report,
        })
        .map_err(LedgerError::Serialize)?;
        let hash = hex::encode(Sha256::digest(&body));
        let line = seal(body, &hash);
        if line.len() > MAX_RECORD_BYTES {
            return Err(LedgerError::RecordTooLarge {
                bytes: line.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        if let Err(e) = file.write_all(&line) {
            // Best effort: leave no torn line behind (the next append would cut it anyway).
            let _ = file.set_len(len);
            return Err(self.io("write", e));
        }
        file.sync_data().map_err(|e| self.io("sync", e))?;
        if was_empty {
            // A new file's directory entry must reach the disk too.
            self.sync_directory()?;
        }
        Ok(LedgerEntry {
            version: LEDGER_VERSION,
            seq,
            ts_ms,
            prev,
            mission: mission.map(str::to_owned),
            report,
            hash,
        })
    }

    /// The last complete record, which ends with the newline at offset `newline`: its head and
    /// its (verified) hash.
    fn last_record(&self, file: &mut File, newline: u64) -> Result<(Head, String), LedgerError> {
        let start = last_newline_before(file, newline)
            .map_err(|e| self.io("read", e))?
            .map_or(0, |at| at + 1);
        let damaged = |reason: String| LedgerError::DamagedTail {
            path: self.path().to_owned(),
            offset: start,
            reason,
        };
        let len = newline - start;
        if len >= MAX_RECORD_BYTES as u64 {
            return Err(damaged(format!("longer than {MAX_RECORD_BYTES} bytes")));
        }
        let mut line = vec![0; len as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut line))
            .map_err(|e| self.io("read", e))?;
        let sealed = unseal(&line).map_err(damaged)?;
        if sealed.stored != sealed.computed {
            return Err(damaged("its content does not match its hash".to_owned()));
        }
        let head: Head =
            serde_json::from_slice(&line).map_err(|e| damaged(format!("not a record: {e}")))?;
        if head.version != LEDGER_VERSION {
            return Err(damaged(format!("unsupported version {}", head.version)));
        }
        Ok((head, sealed.computed))
    }

    /// Checks the whole hash chain, streaming (see the module documentation).
    ///
    /// A missing file is an intact, empty ledger. Errors are reserved for being unable to read
    /// the file; every finding about its content is a [`ChainReport`].
    pub fn verify(&self) -> Result<ChainReport, LedgerError> {
        let Some(mut walker) = self.walker()? else {
            return Ok(ChainReport::Intact {
                records: 0,
                head: None,
            });
        };
        loop {
            match walker.step().map_err(|e| self.io("read", e))? {
                Step::Record(_) => {}
                Step::End => {
                    return Ok(ChainReport::Intact {
                        records: walker.records,
                        head: walker.prev_hash(),
                    });
                }
                Step::Torn { line, bytes } => {
                    return Ok(ChainReport::TornTail {
                        records: walker.records,
                        line,
                        bytes,
                    });
                }
                Step::Bad(report) => return Ok(report),
            }
        }
    }

    /// Streams the records, oldest first, checking the chain as it goes.
    ///
    /// Memory is bounded by one record. A torn final line ends the stream quietly (it is not a
    /// record; [`Entries::torn_tail`] says so afterwards); a break in the chain is yielded as
    /// [`LedgerError::Damaged`] and ends the stream, since nothing after it can be trusted. A
    /// missing file yields nothing. The iterator holds a shared lock on the file until it is
    /// dropped, so appends wait for it (up to their lock deadline): drop it promptly.
    pub fn entries(&self) -> Result<Entries, LedgerError> {
        Ok(Entries {
            walker: self.walker()?,
            path: self.path().to_owned(),
            torn_tail: None,
        })
    }

    /// Streams the records as classifier history (fingerprint and per-test outcomes).
    pub fn history(
        &self,
    ) -> Result<impl Iterator<Item = Result<HistoryRun, LedgerError>> + use<>, LedgerError> {
        Ok(self
            .entries()?
            .map(|entry| entry.map(|e| HistoryRun::from_report(&e.report))))
    }

    /// Classifier history from this ledger, read only when a consumer starts iterating it.
    ///
    /// [`Ledger::history`] opens the file (and takes its shared lock) at once; this waits until
    /// the classifier asks, which [`Mission::verify`](crate::Mission::verify) does only after
    /// its test runs, so no lock is held while tests run and other writers are not kept
    /// waiting. A read error ends the stream early and is kept for
    /// [`LedgerHistory::take_error`].
    pub fn lazy_history(&self) -> LedgerHistory {
        LedgerHistory {
            ledger: self.clone(),
            error: Arc::new(Mutex::new(None)),
        }
    }

    /// The test time the mission `mission` has spent so far: the sum of the durations of every
    /// attempt of every record carrying that mission id.
    ///
    /// Streams the ledger (memory bounded by one record). A damaged ledger is an error: a budget
    /// cannot be restored from evidence that cannot be trusted.
    pub fn mission_spent(&self, mission: &str) -> Result<Duration, LedgerError> {
        let mut spent = Duration::ZERO;
        for entry in self.entries()? {
            let entry = entry?;
            if entry.mission.as_deref() == Some(mission) {
                for attempt in &entry.report.attempts {
                    spent = spent.saturating_add(Duration::from_millis(attempt.duration_ms));
                }
            }
        }
        Ok(spent)
    }

    /// Opens the file for reading under a shared lock, so no append is half-way through.
    fn walker(&self) -> Result<Option<Walker>, LedgerError> {
        let Some(file) = self.open(Open::Read)? else {
            return Ok(None);
        };
        self.lock(&file, Exclusive::No)?;
        Ok(Some(Walker {
            reader: BufReader::with_capacity(64 * 1024, file),
            buf: Vec::new(),
            line: 0,
            records: 0,
            prev: None,
            done: false,
        }))
    }

    fn lock(&self, file: &File, exclusive: Exclusive) -> Result<(), LedgerError> {
        let mode = match exclusive {
            Exclusive::Yes => LockMode::Exclusive,
            Exclusive::No => LockMode::Shared,
        };
        match warden_rootfs::lock(file, mode, self.lock_deadline, self.path()) {
            Ok(()) => Ok(()),
            Err(warden_rootfs::Error::LockTimeout { waited, .. }) => {
                Err(LedgerError::LockTimeout {
                    path: self.path().to_owned(),
                    waited,
                })
            }
            Err(e) => Err(self.refused(e)),
        }
    }

    fn io(&self, action: &'static str, source: io::Error) -> LedgerError {
        LedgerError::Io {
            action,
            path: self.path().to_owned(),
            source,
        }
    }
}

#[derive(Clone, Copy)]
enum Exclusive {
    Yes,
    No,
}

/// A streaming iterator over a ledger's records; see [`Ledger::entries`].
#[derive(Debug)]
pub struct Entries {
    walker: Option<Walker>,
    path: PathBuf,
    torn_tail: Option<u64>,
}

impl Entries {
    /// Once the stream has ended: the size in bytes of the torn final line (an interrupted
    /// append) it stopped at, if there was one. `None` before the end and after a clean end.
    pub fn torn_tail(&self) -> Option<u64> {
        self.torn_tail
    }
}

impl Iterator for Entries {
    type Item = Result<LedgerEntry, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        let walker = self.walker.as_mut()?;
        let step = match walker.step() {
            Ok(step) => step,
            Err(source) => {
                self.walker = None;
                return Some(Err(LedgerError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                }));
            }
        };
        match step {
            Step::Record(entry) => Some(Ok(*entry)),
            Step::End => {
                self.walker = None;
                None
            }
            Step::Torn { bytes, .. } => {
                self.walker = None;
                self.torn_tail = Some(bytes);
                None
            }
            Step::Bad(report) => {
                self.walker = None;
                Some(Err(LedgerError::Damaged {
                    path: self.path.clone(),
                    report,
                }))
            }
        }
    }
}

/// Classifier history read lazily from a ledger; see [`Ledger::lazy_history`].
///
/// Clones share the error slot, so keep a clone to learn after classification whether the
/// history was read in full.
#[derive(Debug, Clone)]
pub struct LedgerHistory {
    ledger: Ledger,
    error: Arc<Mutex<Option<LedgerError>>>,
}

impl LedgerHistory {
    /// The error that ended the stream early, if one did (taken: a second call returns `None`).
    pub fn take_error(&self) -> Option<LedgerError> {
        self.error.lock().map_or(None, |mut slot| slot.take())
    }

    fn keep(&self, error: LedgerError) {
        tracing::warn!(%error, "classifier history ends early: the ledger could not be read");
        if let Ok(mut slot) = self.error.lock() {
            *slot = Some(error);
        }
    }
}

impl IntoIterator for LedgerHistory {
    type Item = HistoryRun;
    type IntoIter = LedgerHistoryIter;

    fn into_iter(self) -> LedgerHistoryIter {
        let entries = match self.ledger.entries() {
            Ok(entries) => Some(entries),
            Err(error) => {
                self.keep(error);
                None
            }
        };
        LedgerHistoryIter {
            entries,
            source: self,
        }
    }
}

/// The iterator of a [`LedgerHistory`]; holds the ledger's shared lock until dropped.
#[derive(Debug)]
pub struct LedgerHistoryIter {
    entries: Option<Entries>,
    source: LedgerHistory,
}

impl Iterator for LedgerHistoryIter {
    type Item = HistoryRun;

    fn next(&mut self) -> Option<HistoryRun> {
        match self.entries.as_mut()?.next() {
            Some(Ok(entry)) => Some(HistoryRun::from_report(&entry.report)),
            Some(Err(error)) => {
                self.entries = None;
                self.source.keep(error);
                None
            }
            None => {
                // Release the lock as soon as the stream ends.
                self.entries = None;
                None
            }
        }
    }
}

/// The line-by-line chain check shared by [`Ledger::verify`] and [`Entries`].
#[derive(Debug)]
struct Walker {
    reader: BufReader<File>,
    buf: Vec<u8>,
    /// Lines read so far.
    line: u64,
    /// Sound records so far.
    records: u64,
    /// The last sound record's hash.
    prev: Option<String>,
    done: bool,
}

enum Step {
    Record(Box<LedgerEntry>),
    End,
    Torn { line: u64, bytes: u64 },
    Bad(ChainReport),
}

impl Walker {
    fn prev_hash(&self) -> Option<String> {
        self.prev.clone()
    }

    fn step(&mut self) -> io::Result<Step> {
        if self.done {
            return Ok(Step::End);
        }
        self.buf.clear();
        let read = (&mut self.reader)
            .take(MAX_RECORD_BYTES as u64)
            .read_until(b'\n', &mut self.buf)?;
        if read == 0 {
            self.done = true;
            return Ok(Step::End);
        }
        self.line += 1;
        let line = self.line;
        if self.buf.last() != Some(&b'\n') {
            self.done = true;
            if read < MAX_RECORD_BYTES {
                return Ok(Step::Torn {
                    line,
                    bytes: read as u64,
                });
            }
            // Over the bound: skip to the line's end without holding it.
            let (rest, terminated) = skip_line(&mut self.reader)?;
            let bytes = read as u64 + rest;
            return Ok(if terminated {
                Step::Bad(ChainReport::Corrupt {
                    line,
                    reason: format!("longer than {MAX_RECORD_BYTES} bytes ({bytes} bytes)"),
                })
            } else {
                Step::Torn { line, bytes }
            });
        }
        self.buf.pop();
        match self.check(line) {
            Ok(entry) => {
                self.records += 1;
                self.prev = Some(entry.hash.clone());
                Ok(Step::Record(Box::new(entry)))
            }
            Err(report) => {
                self.done = true;
                Ok(Step::Bad(report))
            }
        }
    }

    /// Checks one complete line (without its newline) against the chain so far.
    fn check(&self, line: u64) -> Result<LedgerEntry, ChainReport> {
        let corrupt = |reason: String| ChainReport::Corrupt { line, reason };
        let sealed = unseal(&self.buf).map_err(corrupt)?;
        let entry: LedgerEntry = serde_json::from_slice(&self.buf)
            .map_err(|e| corrupt(format!("not a ledger record: {e}")))?;
        let tampered = |problem: Tamper| ChainReport::Tampered {
            line,
            seq: entry.seq,
            problem,
        };
        if sealed.stored != sealed.computed {
            return Err(tampered(Tamper::HashMismatch {
                stored: sealed.stored,
                computed: sealed.computed,
            }));
        }
        if entry.version != LEDGER_VERSION {
            return Err(corrupt(format!(
                "unsupported record version {}",
                entry.version
            )));
        }
        let expected = self.records + 1;
        if entry.seq != expected {
            return Err(tampered(Tamper::SequenceBreak {
                expected,
                found: entry.seq,
            }));
        }
        let expected_prev = self.prev.as_deref().unwrap_or(GENESIS_HASH);
        if entry.prev != expected_prev {
            return Err(tampered(Tamper::BrokenLink {
                expected: expected_prev.to_owned(),
                found: entry.prev.clone(),
            }));
        }
        Ok(entry)
    }
}

/// A line's stored hash and the hash of its body.
struct Sealed {
    stored: String,
    computed: String,
}

/// The line for a body: the body with `,"hash":"<hash>"` inserted before its closing brace,
/// and a newline.
fn seal(mut body: Vec<u8>, hash: &str) -> Vec<u8> {
    body.pop(); // the closing `}` of the JSON object
    body.extend_from_slice(HASH_FIELD);
    body.extend_from_slice(hash.as_bytes());
    body.extend_from_slice(b"\"}\n");
    body
}

/// Splits a line (without newline) into its body and stored hash, and hashes the body.
fn unseal(line: &[u8]) -> Result<Sealed, String> {
    let Some(split) = line.len().checked_sub(HASH_SUFFIX_LEN) else {
        return Err("too short to be a record".to_owned());
    };
    let (body, suffix) = line.split_at(split);
    let hex_digits = &suffix[HASH_FIELD.len()..HASH_FIELD.len() + HASH_HEX_LEN];
    let well_formed = body.first() == Some(&b'{')
        && suffix.starts_with(HASH_FIELD)
        && suffix.ends_with(b"\"}")
        && hex_digits
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    if !well_formed {
        return Err("does not end with a `\"hash\"` field of 64 lower-case hex digits".to_owned());
    }
    let mut hasher = Sha256::new();
    hasher.update(body);
    hasher.update(b"}");
    Ok(Sealed {
        stored: String::from_utf8_lossy(hex_digits).into_owned(),
        computed: hex::encode(hasher.finalize()),
    })
}

/// The offset of the last `\n` before `end`, reading backwards in chunks (memory bounded).
///
/// The work is bounded too: no line Warden writes or reads is longer than
/// [`MAX_RECORD_BYTES`], so finding no newline in that many bytes is an error (a file the
/// tests can write must not make an append read gigabytes, nor cut them off as a torn line).
fn last_newline_before(file: &mut File, end: u64) -> io::Result<Option<u64>> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pos = end;
    while pos > 0 {
        if end - pos > MAX_RECORD_BYTES as u64 {
            return Err(io::Error::other(format!(
                "its last line is longer than any record ({MAX_RECORD_BYTES} bytes); move the \
                 ledger aside"
            )));
        }
        let size = chunk.len().min(pos as usize);
        let start = pos - size as u64;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..size])?;
        if let Some(i) = chunk[..size].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        pos = start;
    }
    Ok(None)
}

/// Consumes the rest of the current line; returns the bytes skipped and whether a newline ended
/// it (rather than the end of the file).
fn skip_line(reader: &mut BufReader<File>) -> io::Result<(u64, bool)> {
    let mut skipped = 0u64;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((skipped, false));
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok((skipped + i as u64 + 1, true));
        }
        let n = available.len();
        skipped += n as u64;
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_unseal_agree_on_the_body_hash() {
        let body = br#"{"version":1,"seq":1}"#.to_vec();
        let hash = hex::encode(Sha256::digest(&body));
        let line = seal(body, &hash);
        assert!(line.ends_with(b"\"}\n"));
        let sealed = unseal(&line[..line.len() - 1]).unwrap();
        assert_eq!(sealed.stored, hash);
        assert_eq!(sealed.computed, hash);
    }

    #[test]
    fn unseal_rejects_lines_without_a_well_formed_hash_field() {
        let hash = "a".repeat(64);
        let good = format!(r#"{{"seq":1,"hash":"{hash}"}}"#);
        assert!(unseal(good.as_bytes()).is_ok());
        for bad in [
            String::new(),
            "{}".to_owned(),
            format!(r#"{{"seq":1,"hash":"{}"}}"#, "A".repeat(64)),
            format!(r#"{{"seq":1,"hash":"{}"}}"#, "a".repeat(63)),
            format!(r#"{{"seq":1,"hash":"{hash}"}} "#),
            format!(r#"["seq",1,"hash":"{hash}"}}"#),
            format!(r#"{{"seq":1,"hush":"{hash}"}}"#),
        ] {
            assert!(unseal(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn oversized_lines_are_corrupt_in_the_middle_and_torn_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut huge = vec![b'x'; MAX_RECORD_BYTES + 10];
        std::fs::write(&path, &huge).unwrap();
        let ledger = Ledger::new(&path);
        assert_eq!(
            ledger.verify().unwrap(),
            ChainReport::TornTail {
                records: 0,
                line: 1,
                bytes: huge.len() as u64,
            }
        );
        huge.extend_from_slice(b"\n{}\n");
        std::fs::write(&path, &huge).unwrap();
        assert!(matches!(
            ledger.verify().unwrap(),
            ChainReport::Corrupt { line: 1, reason } if reason.contains("longer than")
        ));
    }

    #[test]
    fn backwards_search_crosses_chunk_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut bytes = vec![b'a'; 200_000];
        bytes[10] = b'\n';
        std::fs::write(&path, &bytes).unwrap();
        let mut file = File::open(&path).unwrap();
        assert_eq!(last_newline_before(&mut file, 200_000).unwrap(), Some(10));
        assert_eq!(last_newline_before(&mut file, 10).unwrap(), None);
        assert_eq!(last_newline_before(&mut file, 0).unwrap(), None);
    }

    #[test]
    fn the_search_for_the_last_line_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        let mut text = b"{}\n".to_vec();
        text.resize(MAX_RECORD_BYTES + 200_000, b'x');
        std::fs::write(&path, &text).unwrap();
        let mut file = File::open(&path).unwrap();
        let len = text.len() as u64;
        assert!(last_newline_before(&mut file, len).is_err());
        assert_eq!(last_newline_before(&mut file, 100).unwrap(), Some(2));
    }
}
