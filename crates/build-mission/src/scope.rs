//! After a run: every result it reported must come from inside the authorised scope.
//!
//! The policy decides a request against the tree as it is before the run. The run is the
//! same adversary as the request, though: a `conftest.py` inside the scope can, while pytest
//! collects, create a directory link inside the scope that points outside it, and remove it
//! when the session ends. pytest then collects and runs the tests out there under node ids
//! that look in scope (`runtime/tests/link/test_x.py::test_y`), and a check of the tree after
//! the run finds nothing left.
//!
//! So, after each attempt, the file of every reported node id is looked up from a handle on
//! the root, one plain name at a time, without following any link ([`warden_rootfs`]):
//!
//! - it must still be there: a path that vanished cannot be shown to be inside the scope (the
//!   trick above looks exactly like this);
//! - if a link lies on the way, the policy judges it, through [`Authorized::narrow`] (which
//!   resolves links, as it does for a rerun); a link that stays inside the scope is fine;
//! - either way the path must lie within the authorised target, by the policy's rules.
//!
//! A result that fails makes the verification a policy violation (see `Mission::verify`),
//! never a pass. Results past the record bounds are counted but not kept, and so not checked.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use warden_executor::RunEvidence;
use warden_governance_api::{Authorized, Root};
use warden_rootfs::{Dir, Error, Kind};

/// How long the check may take in all; past it, what is left unchecked is a violation (the
/// check fails closed).
const CHECK_DEADLINE: Duration = Duration::from_secs(5);

/// At most this many offending paths are named in the reason.
const NAMED: usize = 5;

/// What to check of the results `attempts` reported, each once: their files when every
/// authorised target is a path (a file inside a path target holds only tests inside it), else
/// their whole node ids (a node-id target allows that test alone, not its file).
pub(crate) fn reported(auth: &Authorized, attempts: &[RunEvidence]) -> BTreeSet<String> {
    let per_id = auth.targets().iter().any(|t| t.contains("::"));
    attempts
        .iter()
        .flat_map(|a| &a.tests)
        .map(|t| {
            if per_id {
                t.nodeid.as_str()
            } else {
                file_of(&t.nodeid)
            }
        })
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The file part of a node id.
fn file_of(nodeid: &str) -> &str {
    nodeid.split("::").next().unwrap_or_default()
}

/// Why the `files` of reported results (see [`reported_files`]) are not all inside what
/// `auth` allows, if they are not.
pub(crate) fn violation(
    root: &Root,
    auth: &Authorized,
    files: &BTreeSet<String>,
) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let dir = match Dir::open(root.path().as_std_path()) {
        Ok(dir) => dir,
        Err(e) => {
            return Some(format!(
                "the results could not be checked against the scope: {e}"
            ));
        }
    };
    let deadline = Instant::now() + CHECK_DEADLINE;
    let mut offending = Vec::new();
    let mut unchecked = 0usize;
    for file in files {
        if Instant::now() >= deadline {
            unchecked += 1;
            continue;
        }
        if let Some(why) = outside(&dir, auth, file) {
            offending.push(why);
        }
    }
    if offending.is_empty() && unchecked == 0 {
        return None;
    }
    let count = offending.len();
    let mut reason = format!(
        "the run reported results from outside the authorised scope `{}`: ",
        auth.targets().join("`, `")
    );
    reason.push_str(
        &offending
            .iter()
            .take(NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    );
    if count > NAMED {
        reason.push_str(&format!("; and {} more", count - NAMED));
    }
    if unchecked > 0 {
        if count > 0 {
            reason.push_str("; ");
        }
        reason.push_str(&format!(
            "{unchecked} files could not be checked within {} s",
            CHECK_DEADLINE.as_secs()
        ));
    }
    Some(reason)
}

/// Why the reported result `id` (a file, or a node id) is not (or cannot be shown to be)
/// inside the scope, if it is not.
fn outside(dir: &Dir, auth: &Authorized, id: &str) -> Option<String> {
    let file = file_of(id);
    let plain = match dir.status_of(file) {
        Ok(status) => status.kind != Kind::Symlink,
        Err(Error::WrongKind {
            found: Kind::Symlink,
            ..
        }) => false,
        // `../elsewhere/test_x.py`, or an absolute path: the policy says why it is out.
        Err(Error::NotPlain { .. }) => true,
        Err(e) if e.is_not_found() => {
            return Some(format!(
                "`{file}` is gone after the run, so nothing shows it was inside the scope (a link \
                 made during the run and removed at its end looks like this)"
            ));
        }
        Err(e) => return Some(format!("`{file}` could not be checked: {e}")),
    };
    match auth.narrow(&[id.to_owned()]) {
        Ok(_) => None,
        Err(denied) if plain => Some(format!("`{id}`: {}", denied.reason)),
        Err(denied) => Some(format!(
            "`{id}` is reached through a link: {}",
            denied.reason
        )),
    }
}
