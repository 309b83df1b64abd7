//! Bytecode of the root's own modules for runs the sandbox confines, compiled by Warden.
//!
//! A confined run cannot write the bytecode cache: it is Warden's state, and a test that could
//! write it could have bytecode of its own stand in for an honest source in a later run. So
//! every confined run compiled the root's modules afresh, and pytest's assertion rewriting of
//! the test modules is a tenth of a 2,000-test run. Bytecode the run produced cannot be
//! adopted (the run is the code under test), so after a confined run Warden compiles the
//! sources the run compiled, itself:
//!
//! - The run's `sitecustomize` notes each source under the root that it compiled (see
//!   [`crate::invocation::SITECUSTOMIZE`]). The notes are only names to consider: a name is
//!   kept if it is a `.py` path lexically under the root, and its file is read by Warden
//!   through handles (no link followed, no FIFO waited on): a regular file of bounded size
//!   whose change time is before the run started and that did not change while it was read,
//!   so the bytes compiled are the ones the cache's manifest will vouch for.
//! - The bytes go to a compiler: [`COMPILER`], run by the same interpreter in isolated mode
//!   (`-I -S`: no environment variables, no working directory, no `site` module, no `.pth`
//!   file, so nothing of the root on `sys.path`) and confined by the same sandbox as the run.
//!   It compiles each source as the import system does (`compile(source, path, "exec",
//!   dont_inherit=True)`, a timestamp header) and, for the modules pytest rewrote, as pytest
//!   does (`rewrite_asserts` without a configuration, a checked-hash header), importing pytest
//!   from the interpreter's own `site-packages` only, and nothing at all if that directory or
//!   any module it loaded lies in the root. Each result comes back on its standard output with
//!   the file name the run would look for; Warden stores it in the cache's mirror only under a
//!   name that belongs to that source.
//! - What was stored is recorded by [`Lease::finish`] like everything else: only if the
//!   source still has the status it had before the run. Python and pytest check each header
//!   against the source again when they load it.
//!
//! Skipped: an interpreter inside the root (the code under test could have changed it), and
//! rewritten modules when the project may turn on `enable_assertion_pass_hook` (the rewrite
//! then depends on the configuration). The compiler has a deadline; what it finished before
//! it is kept. The cost falls on the run that first sees a source (one more interpreter start
//! and that source's compilation after the run); every later run of the unchanged source reads
//! it from the cache.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{ChildStdout, Command};
use warden_rootfs::{Dir, Kind, Open, Status};

use crate::bytecode::Lease;
use crate::confine::{self, Confinement, SandboxPlan};
use crate::invocation::Invocation;
use crate::process::{ProcessGroup, RUN_MARKER_VAR, new_run_id};
use crate::scratch::Scratch;

/// Warden's compiler, run as `python -I -S -c COMPILER ROOT REQUESTS REWRITE`. `REQUESTS` holds
/// records `FLAVOUR MTIME SIZE LENGTH PATH\n` followed by `LENGTH` bytes of source; for each it
/// can compile it writes `INDEX LENGTH NAME\n` and `LENGTH` bytes of bytecode to standard
/// output. A source that does not compile is skipped: the run reports it.
pub(crate) const COMPILER: &str = r#"import sys, os, marshal, importlib.util, sysconfig
root, requests, rewrite_wanted = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
def inside(path):
    path = os.path.realpath(path)
    return path == root or path.startswith(root + os.sep)
rewrite = None
# The interpreter's own site-packages, found as `site` would (a virtual environment's
# `pyvenv.cfg` beside or above the executable), without running `site`.
prefix = sys.prefix
executable_dir = os.path.dirname(os.path.abspath(sys.executable))
for config in (executable_dir, os.path.dirname(executable_dir)):
    if os.path.isfile(os.path.join(config, "pyvenv.cfg")):
        prefix = os.path.dirname(executable_dir)
        break
library = sysconfig.get_path("purelib", vars={"base": prefix, "platbase": prefix})
if rewrite_wanted and library and not inside(library):
    sys.path.append(library)
    try:
        from _pytest.assertion import rewrite
        import ast
    except Exception:
        rewrite = None
    if any(inside(getattr(m, "__file__", None) or "/") for m in list(sys.modules.values())):
        rewrite = None
magic = importlib.util.MAGIC_NUMBER
def u32(n):
    return (n & 0xFFFFFFFF).to_bytes(4, "little")
out = sys.stdout.buffer
with open(requests, "rb") as f:
    index = 0
    while True:
        line = f.readline()
        if not line:
            break
        flavour, mtime, size, length, path = line[:-1].split(b" ", 4)
        source = f.read(int(length))
        path = os.fsdecode(path)
        data = None
        try:
            if flavour == b"plain":
                code = compile(source, path, "exec", dont_inherit=True)
                data = magic + u32(0) + u32(int(mtime)) + u32(int(size)) + marshal.dumps(code)
                name = os.path.basename(importlib.util.cache_from_source(path))
            elif flavour == b"pytest" and rewrite is not None:
                tree = ast.parse(source, filename=path)
                rewrite.rewrite_asserts(tree, source, path, None)
                code = compile(tree, path, "exec", dont_inherit=True)
                data = magic + b"\x03\x00\x00\x00" + importlib.util.source_hash(source)[:8] + marshal.dumps(code)
                name = os.path.basename(path)[:-3] + rewrite.PYC_TAIL
        except Exception:
            data = None
        if data is not None:
            out.write(b"%d %d %s\n" % (index, len(data), os.fsencode(name)))
            out.write(data)
            out.flush()
        index += 1
"#;

/// The most of the run's notes read.
const MAX_NOTES_BYTES: u64 = 4 << 20;
/// The most sources compiled after one run.
const MAX_SOURCES: usize = 20_000;
/// Larger sources are left to the run.
const MAX_SOURCE_BYTES: u64 = 8 << 20;
/// The most source bytes compiled after one run.
const MAX_TOTAL_BYTES: u64 = 128 << 20;
/// The longest header line the compiler writes.
const MAX_HEADER_BYTES: u64 = 4096;
/// Larger bytecode is not stored (and ends the reading: the stream is no longer trusted).
const MAX_BYTECODE_BYTES: usize = 64 << 20;
/// How long the compiler may take; what it finished by then is kept.
const DEADLINE: Duration = Duration::from_secs(30);
/// The ini key under which a project makes pytest's rewrite depend on its configuration.
const PASS_HOOK: &str = "enable_assertion_pass_hook";
/// The requests file's name in the compiler's scratch directory.
const REQUESTS: &str = "compile-requests";

/// How a source is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Flavour {
    /// A source in the root, as the import system compiles it.
    Plain,
    /// A source in the root, with pytest's assertion rewriting.
    Pytest,
    /// A source outside the root that Python imported before the run's `sitecustomize` could
    /// send it to its bytecode beside it, as the import system compiles it. Python checks its
    /// header (modification time and size) against the source when it loads it, as for any
    /// bytecode of a file outside the root in the prefix.
    Outside,
}

impl Flavour {
    /// The compiler's word for it.
    fn word(self) -> &'static str {
        match self {
            Flavour::Plain | Flavour::Outside => "plain",
            Flavour::Pytest => "pytest",
        }
    }
}

/// A source sent to the compiler: its directory (absolute: the mirror is the same path
/// under the prefix), and the stem its bytecode's name must start with.
#[derive(Debug)]
struct Sent {
    dir: Utf8PathBuf,
    stem: String,
}

/// Compiles what the confined run noted in `notes` into `lease`'s mirror. Never fails: a
/// problem leaves those sources to the next run, with a log line.
pub(crate) async fn fill(lease: &Lease, inv: &Invocation, plan: &SandboxPlan, notes: Option<File>) {
    let Some(notes) = notes else {
        return;
    };
    let Some(program) = trusted_interpreter(inv) else {
        tracing::debug!(
            "the interpreter is in the root; the root's bytecode is not compiled by Warden"
        );
        return;
    };
    let began = std::time::Instant::now();
    let root = lease.root().to_owned();
    let started = lease.started();
    let rewrite = !pass_hook_possible(inv);
    let readable = readable_outside(&program, plan);
    let prepared = tokio::task::spawn_blocking(move || {
        let wanted = read_notes(notes, &root, rewrite);
        if wanted.is_empty() {
            return Ok(None);
        }
        let scratch = Scratch::new()?;
        let (mut file, path) = scratch.create(REQUESTS)?;
        let sent = write_requests(&root, &readable, started, &wanted, &mut file);
        Ok::<_, String>(Some((scratch, path, sent)))
    })
    .await;
    let (scratch, requests, sent) = match prepared.map_err(|e| e.to_string()) {
        Ok(Ok(Some(prepared))) if !prepared.2.is_empty() => prepared,
        Ok(Ok(_)) => return,
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(error = %e, "could not prepare the root's sources for compilation");
            return;
        }
    };
    let scratch_dir = requests.parent().unwrap_or(&inv.root).as_std_path();
    let confinement = match Confinement::prepare(plan, inv, scratch_dir) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "could not confine the compiler");
            return;
        }
    };
    let argv = vec![
        program.into_string(),
        "-I".into(),
        "-S".into(),
        "-c".into(),
        COMPILER.into(),
        inv.root.to_string(),
        requests.to_string(),
        if rewrite { "1" } else { "0" }.into(),
    ];
    let stored = match compile(&confinement, &argv, inv, lease, &sent).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "the compiler of the root's sources failed");
            0
        }
    };
    tracing::debug!(
        sources = sent.len(),
        stored,
        elapsed_ms = began.elapsed().as_millis() as u64,
        "compiled the root's sources the run compiled"
    );
    drop(scratch);
}

/// Runs the compiler confined and stores what it writes, within [`DEADLINE`].
async fn compile(
    confinement: &Confinement,
    argv: &[String],
    inv: &Invocation,
    lease: &Lease,
    sent: &[Sent],
) -> Result<usize, String> {
    let (program, args) = confinement.command(argv, false)?;
    let run_id = new_run_id();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(&inv.root)
        .env_clear()
        .envs(confinement.environment())
        .env(RUN_MARKER_VAR, &run_id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start the compiler: {e}"))?;
    let pid = child.id().ok_or("the compiler vanished as it started")?;
    // Dropped on every way out, the group kills whatever is left of the compiler.
    let mut group = ProcessGroup::new(pid as i32, &run_id);
    if confinement.own_pid_namespace() {
        group = group.in_own_pid_namespace();
    }
    let stdout = child.stdout.take().ok_or("the compiler has no output")?;
    let mut stored = 0;
    let read = tokio::time::timeout(DEADLINE, read_results(stdout, lease, sent, &mut stored)).await;
    group.signal(Signal::SIGKILL);
    let exited = tokio::time::timeout(Duration::from_secs(1), child.wait())
        .await
        .is_ok_and(|status| status.is_ok());
    group.kill_leftovers(Duration::from_secs(1), exited).await;
    match read {
        Ok(Ok(())) => Ok(stored),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "the compiler did not finish within {DEADLINE:?}; {stored} kept"
        )),
    }
}

/// Reads the compiler's results and stores each in the mirror, counting them in `stored`.
async fn read_results(
    stdout: ChildStdout,
    lease: &Lease,
    sent: &[Sent],
    stored: &mut usize,
) -> Result<(), String> {
    let mut reader = BufReader::new(stdout);
    let mut header = Vec::new();
    loop {
        header.clear();
        (&mut reader)
            .take(MAX_HEADER_BYTES)
            .read_until(b'\n', &mut header)
            .await
            .map_err(|e| format!("reading the compiler's output: {e}"))?;
        if header.is_empty() {
            return Ok(());
        }
        let (index, length, name) = parse_header(&header, sent)
            .ok_or_else(|| "the compiler's output is not what Warden asked for".to_owned())?;
        let mut bytecode = vec![0; length];
        reader
            .read_exact(&mut bytecode)
            .await
            .map_err(|e| format!("reading the compiler's output: {e}"))?;
        match lease.store(&sent[index].dir, name, &bytecode) {
            Ok(()) => *stored += 1,
            Err(e) => tracing::warn!(error = %e, "could not store compiled bytecode"),
        }
    }
}

/// `INDEX LENGTH NAME\n`, checked: the index names a source sent, the length is bounded, and
/// the name is a bytecode file name of that source (`<stem>.<anything>.pyc`, one component).
fn parse_header<'a>(header: &'a [u8], sent: &[Sent]) -> Option<(usize, usize, &'a str)> {
    let line = std::str::from_utf8(header.strip_suffix(b"\n")?).ok()?;
    let mut parts = line.splitn(3, ' ');
    let index: usize = parts.next()?.parse().ok()?;
    let length: usize = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    let source = sent.get(index)?;
    let belongs = name
        .strip_prefix(source.stem.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|rest| rest.len() > ".pyc".len() && rest.ends_with(".pyc"));
    (belongs && length <= MAX_BYTECODE_BYTES && !name.contains(['/', '\0']))
        .then_some((index, length, name))
}

/// The interpreter's path if it is outside the root both as named and resolved; `None` when
/// it is inside (or cannot be found).
fn trusted_interpreter(inv: &Invocation) -> Option<Utf8PathBuf> {
    let program = Utf8PathBuf::from_path_buf(confine::resolve_program(&inv.program())?).ok()?;
    let absolute = if program.is_absolute() {
        program.clone()
    } else {
        inv.root.join(&program)
    };
    let resolved = Utf8PathBuf::from_path_buf(absolute.canonicalize().ok()?).ok()?;
    let inside = |path: &Utf8Path| path.starts_with(&inv.root);
    (!inside(&absolute) && !inside(&resolved)).then_some(absolute)
}

/// Whether the project may turn on pytest's assertion pass hook (named in its arguments or
/// configuration file, or the file cannot be read): its rewritten modules are then left to
/// the run.
fn pass_hook_possible(inv: &Invocation) -> bool {
    if inv
        .addopts
        .iter()
        .chain(&inv.extra_args)
        .any(|a| a.contains(PASS_HOOK))
    {
        return true;
    }
    let Some(config) = &inv.config_file else {
        return false;
    };
    let Ok(rel) = config.strip_prefix(&inv.root) else {
        return true;
    };
    let read = || -> Option<Vec<u8>> {
        let file = Dir::open(&inv.root).ok()?.open_file(rel, Open::Read).ok()?;
        let mut text = Vec::new();
        file.take(MAX_NOTES_BYTES).read_to_end(&mut text).ok()?;
        Some(text)
    };
    read().is_none_or(|text| {
        text.windows(PASS_HOOK.len())
            .any(|w| w == PASS_HOOK.as_bytes())
    })
}

/// The sources named in the run's notes (`FLAVOUR\tPATH\n` lines, read up to a bound), as
/// absolute paths of `.py` files: lexically under `root` (rewritten ones only if `rewrite`),
/// or outside it for [`Flavour::Outside`].
fn read_notes(notes: File, root: &Utf8Path, rewrite: bool) -> BTreeSet<(Utf8PathBuf, Flavour)> {
    let mut text = Vec::new();
    if notes.take(MAX_NOTES_BYTES).read_to_end(&mut text).is_err() {
        return BTreeSet::new();
    }
    parse_notes(&text, root, rewrite)
}

fn parse_notes(text: &[u8], root: &Utf8Path, rewrite: bool) -> BTreeSet<(Utf8PathBuf, Flavour)> {
    let mut wanted = BTreeSet::new();
    // Only whole lines: the last may have been cut by the bound.
    for line in text.split_inclusive(|b| *b == b'\n') {
        if wanted.len() >= MAX_SOURCES {
            break;
        }
        let Some(line) = line.strip_suffix(b"\n") else {
            break;
        };
        let Some(tab) = line.iter().position(|b| *b == b'\t') else {
            continue;
        };
        let flavour = match &line[..tab] {
            b"plain" => Flavour::Plain,
            b"pytest" if rewrite => Flavour::Pytest,
            b"outside" => Flavour::Outside,
            _ => continue,
        };
        let Ok(path) = std::str::from_utf8(&line[tab + 1..]) else {
            continue;
        };
        let path = Utf8Path::new(path);
        let plain = path.is_absolute()
            && path
                .components()
                .skip(1)
                .all(|c| matches!(c, Utf8Component::Normal(_)));
        let inside = path.starts_with(root) && path != root;
        if plain
            && inside == (flavour != Flavour::Outside)
            && path.extension() == Some("py")
            && path.file_stem().is_some()
        {
            wanted.insert((path.to_owned(), flavour));
        }
    }
    wanted
}

/// Writes a request for each wanted source that can be trusted to be what the manifest will
/// record (see the module's documentation) into `out`; returns what was sent, in order.
fn write_requests(
    root: &Utf8Path,
    readable: &[PathBuf],
    started: (i64, i64),
    wanted: &BTreeSet<(Utf8PathBuf, Flavour)>,
    out: &mut File,
) -> Vec<Sent> {
    let Ok(tree) = Dir::open(root) else {
        return Vec::new();
    };
    let mut sent = Vec::new();
    let mut total = 0u64;
    for (path, flavour) in wanted {
        let file = match (flavour, path.strip_prefix(root)) {
            (Flavour::Outside, _) => open_outside(path, root, readable),
            (_, Ok(rel)) => tree.open_file(rel, Open::Read).ok(),
            (_, Err(_)) => None,
        };
        let Some(source) = file.and_then(|file| read_settled(&file, started)) else {
            continue;
        };
        let (status, bytes) = source;
        total += status.size;
        if total > MAX_TOTAL_BYTES {
            break;
        }
        // Python keeps `int(st_mtime)`: truncated towards zero.
        let seconds = if status.mtime.0 < 0 && status.mtime.1 > 0 {
            status.mtime.0 + 1
        } else {
            status.mtime.0
        };
        let header = format!(
            "{} {seconds} {} {} {}\n",
            flavour.word(),
            status.size,
            bytes.len(),
            path
        );
        if out
            .write_all(header.as_bytes())
            .and_then(|()| out.write_all(&bytes))
            .is_err()
        {
            break;
        }
        sent.push(Sent {
            dir: path.parent().map(Utf8Path::to_owned).unwrap_or_default(),
            stem: path.file_stem().unwrap_or_default().to_owned(),
        });
    }
    if out.flush().is_err() {
        return Vec::new();
    }
    sent
}

/// The file outside the root at `path`, not a link itself, not the root's by another name (a
/// directory on the way that leads into the root), and in a tree the run may read anyway
/// (`readable`): bytecode in the cache is readable by later runs, so Warden must not compile
/// there what the sandbox keeps from them.
fn open_outside(path: &Utf8Path, root: &Utf8Path, readable: &[PathBuf]) -> Option<File> {
    let resolved = path.parent()?.as_std_path().canonicalize().ok()?;
    if resolved.starts_with(root) || !readable.iter().any(|tree| resolved.starts_with(tree)) {
        return None;
    }
    warden_rootfs::open_read(path, false).ok()
}

/// The trees outside the root that a confined run may read (resolved): the system's, the
/// interpreter's, and the policy's `[sandbox] read` paths.
fn readable_outside(program: &Utf8Path, plan: &SandboxPlan) -> Vec<PathBuf> {
    warden_sandbox::SYSTEM_READ
        .iter()
        .map(PathBuf::from)
        .chain(warden_sandbox::interpreter_trees(program.as_std_path()))
        .chain(plan.settings.read.iter().map(PathBuf::from))
        .filter_map(|tree| tree.canonicalize().ok())
        .collect()
}

/// The bytes of the regular file `file` with its status, if it last changed before `started`
/// and did not change while it was read.
fn read_settled(file: &File, started: (i64, i64)) -> Option<(Status, Vec<u8>)> {
    let before = Status::of_file(file).ok()?;
    if before.kind != Kind::File || before.size > MAX_SOURCE_BYTES || before.ctime >= started {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    let after = Status::of_file(file).ok()?;
    (after == before && bytes.len() as u64 == before.size).then_some((before, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(stem: &str) -> Vec<Sent> {
        vec![Sent {
            dir: "/r/tests".into(),
            stem: stem.into(),
        }]
    }

    #[test]
    fn notes_keep_only_py_files_on_the_right_side_of_the_root_and_whole_lines() {
        let root = Utf8Path::new("/r");
        let text = b"plain\t/r/tests/test_a.py\n\
            pytest\t/r/tests/test_a.py\n\
            plain\t/elsewhere/x.py\n\
            plain\t/r/../etc/x.py\n\
            plain\t/r/tests/data.txt\n\
            plain\ttests/relative.py\n\
            other\t/r/tests/test_b.py\n\
            plain\t/r/tests/test_a.py\n\
            outside\t/usr/lib/python3/encodings/__init__.py\n\
            outside\t/r/tests/test_c.py\n\
            outside\t/usr/lib/../../r/tests/test_c.py\n\
            plain\t/r/tests/cut.py";
        let wanted = parse_notes(text, root, true);
        let expected: BTreeSet<_> = [
            (Utf8PathBuf::from("/r/tests/test_a.py"), Flavour::Plain),
            (Utf8PathBuf::from("/r/tests/test_a.py"), Flavour::Pytest),
            (
                Utf8PathBuf::from("/usr/lib/python3/encodings/__init__.py"),
                Flavour::Outside,
            ),
        ]
        .into();
        assert_eq!(wanted, expected);
        let without_rewriting = parse_notes(text, root, false);
        assert_eq!(without_rewriting.len(), 2);
    }

    #[test]
    fn a_result_must_name_bytecode_of_the_source_it_answers() {
        let s = sent("test_a");
        assert_eq!(
            parse_header(b"0 10 test_a.cpython-311.pyc\n", &s),
            Some((0, 10, "test_a.cpython-311.pyc"))
        );
        assert!(parse_header(b"0 10 test_a.cpython-311-pytest-9.2.0.pyc\n", &s).is_some());
        for bad in [
            &b"1 10 test_a.cpython-311.pyc\n"[..],
            b"0 10 test_b.cpython-311.pyc\n",
            b"0 10 test_a.pyc\n",
            b"0 10 test_a.cpython-311.py\n",
            b"0 10 test_a./../x.pyc\n",
            b"0 99999999999 test_a.cpython-311.pyc\n",
            b"0 10 test_a.cpython-311.pyc",
            b"x 10 test_a.cpython-311.pyc\n",
        ] {
            assert_eq!(
                parse_header(bad, &s),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
