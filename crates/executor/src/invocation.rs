//! The exact command Warden runs, and the environment it runs in.
//!
//! pytest, in the root, with the project's checked `addopts` items first (where pytest itself
//! puts them), then the allowed extra arguments, then Warden's own options after
//! them (later options win in pytest's parser, so an extra argument cannot undo one of
//! Warden's), then `--` and the targets (so a target can never be read as an option).
//!
//! pytest is started as `python -P -c BOOTSTRAP`, not `python -m pytest`: `-m` puts the
//! working directory (the root, which the agent writes) first on `sys.path`, so a `pytest.py`,
//! a `_pytest/` or `pluggy/`, or a standard-library name such as `fnmatch.py` at the root would
//! run instead of the real module, and could print a fake session. `-P` (Python 3.11 and
//! later; older interpreters refuse it and the run is reported as infrastructure, see
//! [`crate::results`]) adds nothing to `sys.path`; [`BOOTSTRAP`] then appends the root
//! *after* the standard library and site-packages and calls `pytest.main()`, so
//! tests that import modules from the root still find them, as under `python -m pytest`, but
//! nothing there can stand in for pytest, pluggy or the standard library.
//!
//! Warden's options:
//!
//! - `--rootdir=<root>`: node ids are relative to Warden's root whatever ini file pytest finds,
//!   so they match the policy's targets and can be rerun.
//! - `--config-file=<file>` and `--confcutdir=<its directory>`: configuration and conftests
//!   come from inside the root only. The file is the one pytest would choose if the file system
//!   ended at the root, as the policy found it when it authorised the run
//!   ([`Authorized::config_file`](warden_governance_api::Authorized::config_file)); when there is none, `/dev/null` (no
//!   configuration) and the root. Without them pytest searches past the root, and a
//!   configuration file above it would set the run's options and have the conftests between
//!   it and the root imported.
//! - `-p no:cacheprovider`: no `.pytest_cache` is written into the tree under test.
//! - `-o addopts=`: pytest does not read the project's ini `addopts` itself. The files under
//!   test are in the agent's hands, and `addopts` could otherwise smuggle in exactly the options
//!   the policy's argument allowlist refuses (`-p plugin`, `--junitxml=/elsewhere`,
//!   `--rootdir`, ...). The policy judged each item when it
//!   authorised the run, and the kept items come first on the command line, so what runs is
//!   exactly what was checked. The rest of the ini file still applies.
//! - The first argument after [`BOOTSTRAP`] (which takes it off before pytest reads its
//!   arguments): the file in the run's private directory where Warden's plugin writes one
//!   record per report (see [`crate::records`]).
//! - `-o log_file=`: the ini key `log_file` (the twin of the refused `--log-file`) would have
//!   pytest create and truncate a file anywhere; empty, pytest logs to `os.devnull`. This is
//!   the one ini key of pytest 9.2 that names a file pytest writes: `cache_dir` is only used by
//!   the cache provider, which `-p no:cacheprovider` disables, the `junit_*` keys only shape
//!   a JUnit report, which nothing writes without the refused `--junitxml`, and the other
//!   `log_file_*` keys only shape what is written where Warden says (see docs/threat-model.md for the whole audit). Not named when the
//!   logging plugin is switched off (`-p no:logging`, allowed in a project's `addopts`): the
//!   key then does not exist, nothing writes a log, and `--strict-config` would stop the run.
//! - `-o verbosity_test_cases=auto`: the ini key could turn the per-test progress lines
//!   into dots, hiding from Warden which test is running.
//! - `--color=no -ra --verbosity=N`: plain text, a short summary line for every outcome but
//!   a pass (the subtests' descriptions and an XPASS's reason are only there), and one
//!   progress line per test (N is at least 1, more if the extra args asked for more). Not
//!   `-rap`: a summary line for every pass repeats what the progress lines and the records
//!   already say (it cost toolz's suite 0.6 % more instructions). Not `-rA`: its `P` prints
//!   the captured output of every passing test, and pytest 9.2 finds each passing test's
//!   teardown sections by scanning every report, which is quadratic in the number of tests
//!   (click's 2,459 tests: 15 s under bare pytest, 25 s with `-rA`); Warden never reads those
//!   sections.
//!
//! The environment is cleared, then given `PATH`, `HOME`, `LANG`, `LC_*`, `TMPDIR` and the
//! policy's `env_allow` names from Warden's own environment, except reserved names that inject
//! code or options into Python or pytest (`PYTHON*`, `PYTEST_*`, `LD_*`, `DYLD_*`, `WARDEN_*`,
//! `BASH_ENV`, `ENV`, ...: the governance's [`reserved_env`] rule, the same that refuses them
//! in a policy), which never pass even if a caller lists them. Warden adds
//! `PYTHONPYCACHEPREFIX`, naming the bytecode cache when the run holds it (see
//! [`crate::bytecode`]) and else a private, empty directory of the run's own: either way no
//! `__pycache__` in the tree is written *or read*, so bytecode planted there never stands in
//! for its source (`PYTHONDONTWRITEBYTECODE` alone would still read it). Then `PYTHONUNBUFFERED=1` (what pytest printed before a kill is not lost in a buffer)
//! and the run marker that lets Warden find processes that leave the process group.

use std::ffi::OsString;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use warden_governance_api::reserved_env;

use crate::process::RUN_MARKER_VAR;

/// The program `python -P -c` runs (`bootstrap.py`): the root (the working directory) goes on
/// `sys.path` after everything else, then pytest runs on the arguments that follow the first
/// (`pytest.main()` reads `sys.argv[1:]`, as the `pytest` command does; `console_main` is
/// deprecated in pytest 9.2) with one plugin of Warden's, which writes the results records
/// to the file the first argument names (see [`crate::records`]). Only built-in or already
/// imported modules (`sys`, `os`) are used before pytest is imported.
///
/// The plugin is handed to `pytest.main` as an object, not named with `-p`: pytest registers
/// it under no name, so no `-p no:NAME` of a project's `addopts` can switch it off, and xdist's
/// workers (which make reports, not records) do not load it; their reports reach the
/// controller's hooks, where it writes them.
pub(crate) const BOOTSTRAP: &str = include_str!("bootstrap.py");

/// The run's `sitecustomize.py` (in a directory on `PYTHONPATH`, so every Python process of
/// the run runs it at start-up: pytest, xdist workers, interpreters that tests start). It
/// takes the root from [`ROOT_VAR`] and the notes file below from [`NOTES_VAR`], so that its
/// text is the same for every run and can live in the bytecode cache with its own bytecode
/// beside it ([`crate::bytecode::Lease::site`]): compiling it afresh cost every Python process
/// of a run about 5 ms. Without the root it treats every directory as the root's. It wraps two
/// methods of the frozen import machinery, so that bytecode is found where it can be trusted
/// and written only into the prefix Warden names (`PYTHONPYCACHEPREFIX`, see
/// [`crate::bytecode`]):
///
/// - `cache_from_source`: a source outside the root (its directory outside it both by name and
///   once links are resolved) whose bytecode Python already keeps beside it (`__pycache__`)
///   gets that bytecode, as without a prefix. The standard library and installed packages
///   usually come compiled; read from the prefix they would be compiled afresh by every
///   process of a run that cannot write the cache (1.3 s for pytest's imports alone), which a
///   run confined by the sandbox cannot: the cache is Warden's state, read-only to tests.
///   Bytecode outside the root is as trustworthy as its source: the sandbox lets the run write
///   neither (apart from its private directories and the policy's `[sandbox] write` paths,
///   whose sources it can rewrite anyway). Everything in the root still goes through the
///   prefix, so bytecode planted in the tree's `__pycache__` is never read, whatever path a
///   module is imported by. It runs for every module imported, so it is kept cheap: each
///   directory is placed (in the root or not, its links resolved by the kernel through
///   `/proc/self/fd`) and its `__pycache__` listed once per process, and the bytecode's name
///   is built as the import system builds it when no optimization level is asked for (else
///   the import system's own function names it). Both cost a pytest start about 12 ms when
///   they resolved links in Python and asked the file system about each module.
/// - `SourceFileLoader._cache_bytecode`: bytecode is written only under the prefix, so a stale
///   `__pycache__` file beside a source outside the root is recompiled, never rewritten.
/// - pytest's `get_cache_dir`, once `_pytest.assertion.rewrite` is imported: pytest rewrites
///   the assertions of every module of an installed plugin's distribution (all of
///   `hypothesis`, all of `anyio`, ...) and keeps that bytecode under the prefix too, so a
///   confined run rewrote them on every start (250 ms for `anyio`'s plugin alone). For a
///   source outside the root whose rewritten bytecode pytest already keeps beside it, fresh
///   (its header's source hash, or modification time and size, are the source's), that is
///   where pytest looks;
///   anything else goes through the prefix as before, so pytest never writes beside it either.
///
/// In a run the sandbox confines, which cannot write the cache, the first two also note each
/// source in the root that the run compiled (Python's own bytecode, or pytest's rewritten
/// one) in a file Warden names ([`NOTES_VAR`]), so that Warden can compile those sources itself
/// after the run ([`crate::precompile`]); the note is only a list of names to consider. So
/// are the modules outside the root that Python imported before `sitecustomize` ran (the
/// `encodings` package, what `.pth` files import) and compiled for want of bytecode in the
/// prefix: every Python process of a confined run would compile them again. So is the
/// `sitecustomize` itself when its bytecode is not in the cache yet.
///
/// Then it takes its directory off `sys.path` (the variable stays for child processes) and
/// imports the `sitecustomize` it shadowed, if the interpreter has one.
pub(crate) const SITECUSTOMIZE: &str = r#"import sys, os
def _warden_bytecode(root, wanted):
    machinery = sys.modules["_frozen_importlib_external"]
    in_prefix = machinery.cache_from_source
    write = machinery.SourceFileLoader._cache_bytecode
    prefix = os.path.join(sys.pycache_prefix or "/nonexistent", "")
    inside = {}
    def resolved(directory):
        try:
            fd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
        except (OSError, ValueError, AttributeError):
            return os.path.realpath(directory)
        try:
            return os.readlink("/proc/self/fd/%d" % fd)
        except OSError:
            return os.path.realpath(directory)
        finally:
            os.close(fd)
    def under_root(directory):
        if root is None:
            return True
        known = inside.get(directory)
        if known is None:
            known = any(p == root or p.startswith(root + os.sep) for p in (os.path.abspath(directory), resolved(directory)))
            inside[directory] = known
        return known
    tag = sys.implementation.cache_tag
    plain = tag is not None and not sys.flags.optimize
    compiled = {}
    def beside(directory):
        names = compiled.get(directory)
        if names is None:
            names = frozenset()
            if not under_root(directory):
                try:
                    names = frozenset(os.listdir(os.path.join(directory, "__pycache__")))
                except (OSError, ValueError):
                    pass
            compiled[directory] = names
        return names
    def cache_from_source(path, debug_override=None, *, optimization=None):
        if plain and debug_override is None and optimization is None and type(path) is str and path[:1] == os.sep and path[-3:] == ".py":
            directory, _, name = path.rpartition(os.sep)
            directory = directory or os.sep
            if len(name) > 3:
                name = name[:-3] + "." + tag + ".pyc"
                if name in beside(directory):
                    return os.path.join(directory, "__pycache__", name)
        return in_prefix(path, debug_override, optimization=optimization)
    def want(kind, path):
        if wanted is None or (kind == b"outside") == under_root(os.path.dirname(path)):
            return
        try:
            fd = os.open(wanted, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, kind + b"\t" + os.fsencode(path) + b"\n")
            finally:
                os.close(fd)
        except (OSError, ValueError):
            pass
    def cache_bytecode(self, source_path, bytecode_path, data):
        want(b"plain", os.path.abspath(source_path))
        if bytecode_path.startswith(prefix):
            return write(self, source_path, bytecode_path, data)
    machinery.cache_from_source = cache_from_source
    machinery.SourceFileLoader._cache_bytecode = cache_bytecode
    def fresh(pyc, source):
        try:
            with open(pyc, "rb") as f:
                header = f.read(16)
            if len(header) != 16:
                return False
            if header[4:8] == b"\x03\x00\x00\x00":
                import importlib.util
                with open(source, "rb") as f:
                    return importlib.util.source_hash(f.read())[:8] == header[8:16]
            status = os.stat(source)
        except OSError:
            return False
        return header[4:8] == bytes(4) and int.from_bytes(header[8:12], "little") == int(status.st_mtime) & 0xFFFFFFFF and int.from_bytes(header[12:16], "little") == status.st_size & 0xFFFFFFFF
    class PytestRewriteCache:
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name != "_pytest.assertion.rewrite":
                return None
            sys.meta_path.remove(cls)
            spec = machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            load = spec.loader.exec_module
            def exec_module(module):
                load(module)
                in_prefix_dir = getattr(module, "get_cache_dir", None)
                tail = getattr(module, "PYC_TAIL", None)
                if in_prefix_dir is None or tail is None:
                    return
                def get_cache_dir(file_path):
                    directory = os.fspath(file_path.parent)
                    if not under_root(directory):
                        beside = file_path.parent / "__pycache__"
                        if fresh(beside / (file_path.stem + tail), file_path):
                            return beside
                    return in_prefix_dir(file_path)
                module.get_cache_dir = get_cache_dir
                rewrite_test = getattr(module, "_rewrite_test", None)
                if rewrite_test is not None:
                    def _rewrite_test(fn, config):
                        want(b"pytest", os.path.abspath(os.fspath(fn)))
                        return rewrite_test(fn, config)
                    module._rewrite_test = _rewrite_test
            spec.loader.exec_module = exec_module
            return spec
    sys.meta_path.insert(0, PytestRewriteCache)
    here = os.path.dirname(os.path.abspath(__file__))
    if wanted is not None:
        for module in list(sys.modules.values()):
            spec = getattr(module, "__spec__", None)
            source, cached = getattr(spec, "origin", None), getattr(spec, "cached", None)
            if isinstance(source, str) and isinstance(cached, str) and source.endswith(".py") and os.path.isabs(source) and os.path.dirname(source) != here and cached.startswith(prefix) and not os.path.exists(cached):
                want(b"outside", source)
        cached = globals().get("__cached__")
        if isinstance(cached, str) and not os.path.exists(cached):
            want(b"plain" if under_root(here) else b"outside", os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    this = sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize
    except ImportError:
        sys.modules["sitecustomize"] = this
_warden_bytecode(os.environ.get("WARDEN_ROOT"), os.environ.get("WARDEN_BYTECODE_NOTES"))
del _warden_bytecode
"#;

/// The variable naming the root for [`SITECUSTOMIZE`].
pub(crate) const ROOT_VAR: &str = "WARDEN_ROOT";
/// The variable naming the file where a confined run notes the sources it compiled.
pub(crate) const NOTES_VAR: &str = "WARDEN_BYTECODE_NOTES";

/// Names always passed through from Warden's environment (when set).
const BASE_ENV: [&str; 4] = ["PATH", "HOME", "LANG", "TMPDIR"];

/// The configuration file for a root without one: pytest 9 reads a `--config-file` that is not
/// a regular file as "no configuration" (and earlier versions find no pytest section in it).
const NO_CONFIGURATION: &str = "/dev/null";

/// Everything needed to run pytest once.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    /// Absolute, canonical root: the working directory and pytest's rootdir.
    pub(crate) root: Utf8PathBuf,
    /// Root-relative targets (paths or node ids).
    pub(crate) targets: Vec<String>,
    /// The pytest configuration file inside the root, if there is one (found by the policy).
    pub(crate) config_file: Option<Utf8PathBuf>,
    /// The project's `addopts` items the policy checked and kept.
    pub(crate) addopts: Vec<String>,
    /// Allowlisted extra pytest arguments.
    pub(crate) extra_args: Vec<String>,
    /// The interpreter: a bare name looked up on `PATH`, or a path (relative to the root).
    pub(crate) python: String,
    /// Extra environment names to pass through.
    pub(crate) env_allow: Vec<String>,
    /// How long the run may take before it is stopped.
    pub(crate) deadline: Duration,
    /// How long the process group gets between SIGTERM and SIGKILL.
    pub(crate) grace: Duration,
    /// Bytes kept of each output stream.
    pub(crate) output_cap: usize,
    /// The bytecode cache directory, if the runner has one (see [`crate::bytecode`]).
    pub(crate) bytecode_cache: Option<Utf8PathBuf>,
}

impl Invocation {
    /// The interpreter to execute: bare names go through `PATH`; anything with a slash is a
    /// path, taken relative to the root when not absolute.
    pub(crate) fn program(&self) -> String {
        if self.python.contains('/') && !self.python.starts_with('/') {
            self.root.join(&self.python).into_string()
        } else {
            self.python.clone()
        }
    }

    /// The full command line, interpreter first.
    pub(crate) fn argv(&self, records: &Utf8Path) -> Vec<String> {
        let mut argv = vec![
            self.program(),
            "-P".into(),
            "-c".into(),
            BOOTSTRAP.into(),
            records.as_str().into(),
        ];
        argv.extend(self.addopts.iter().cloned());
        argv.extend(self.extra_args.iter().cloned());
        let (config_file, confcutdir) = match &self.config_file {
            Some(file) => (file.as_str(), file.parent().unwrap_or(&self.root)),
            None => (NO_CONFIGURATION, self.root.as_path()),
        };
        argv.extend([
            format!("--rootdir={}", self.root),
            format!("--config-file={config_file}"),
            format!("--confcutdir={confcutdir}"),
            "-p".into(),
            "no:cacheprovider".into(),
            "-o".into(),
            "addopts=".into(),
        ]);
        // With the logging plugin switched off (`-p no:logging`, a common `addopts` item) the
        // key does not exist and nothing can write a log file; naming it then would make
        // `--strict-config` stop the run.
        if !disables_plugin(&self.addopts, "logging")
            && !disables_plugin(&self.extra_args, "logging")
        {
            argv.extend(["-o".into(), "log_file=".into()]);
        }
        argv.extend([
            "-o".into(),
            "verbosity_test_cases=auto".into(),
            "--color=no".into(),
            "-ra".into(),
            format!(
                "--verbosity={}",
                (verbosity(&self.addopts) + verbosity(&self.extra_args)).max(1)
            ),
            "--".into(),
        ]);
        argv.extend(self.targets.iter().cloned());
        argv
    }

    /// The child's whole environment, drawn from `parent` (Warden's own environment), with
    /// bytecode kept under `bytecode_prefix` (the cache's, or the run's private one), the
    /// [`SITECUSTOMIZE`] in `site_dir` and, for a confined run, its notes in `notes`.
    pub(crate) fn environment(
        &self,
        parent: impl IntoIterator<Item = (OsString, OsString)>,
        run_id: &str,
        bytecode_prefix: &Utf8Path,
        site_dir: &Utf8Path,
        notes: Option<&Utf8Path>,
    ) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = parent
            .into_iter()
            .filter(|(name, _)| name.to_str().is_some_and(|n| self.passes(n)))
            .collect();
        env.extend([
            (
                "PYTHONPYCACHEPREFIX".into(),
                bytecode_prefix.as_str().into(),
            ),
            ("PYTHONPATH".into(), site_dir.as_str().into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            (RUN_MARKER_VAR.into(), run_id.into()),
            (ROOT_VAR.into(), self.root.as_str().into()),
        ]);
        env.extend(notes.map(|path| (NOTES_VAR.into(), path.as_str().into())));
        env
    }

    fn passes(&self, name: &str) -> bool {
        if let Some(why) = reserved_env(name) {
            if self.env_allow.iter().any(|a| a == name) {
                tracing::warn!(
                    name,
                    why,
                    "a reserved environment variable was allowed; it is not passed"
                );
            }
            return false;
        }
        BASE_ENV.contains(&name)
            || name.starts_with("LC_")
            || self.env_allow.iter().any(|a| a == name)
    }
}

/// Whether `args` (already allowed by the policy) switch off the plugin `name` with `-p no:NAME`.
fn disables_plugin(args: &[String], name: &str) -> bool {
    let off = format!("no:{name}");
    args.iter().enumerate().any(|(at, arg)| {
        (arg == &off && at > 0 && args[at - 1].starts_with('-') && args[at - 1].ends_with('p'))
            || (arg.starts_with('-') && !arg.starts_with("--") && arg.ends_with(&format!("p{off}")))
    })
}

/// The net verbosity the extra arguments ask for (`-v` +1, `-vv` +2, `-q` -1, ...).
pub(crate) fn verbosity(extra_args: &[String]) -> i32 {
    let mut level = 0i32;
    for arg in extra_args {
        match arg.as_str() {
            "--verbose" => level += 1,
            "--quiet" => level -= 1,
            a if a.starts_with("--verbosity=") => {
                if let Ok(n) = a["--verbosity=".len()..].parse::<i32>() {
                    level = n;
                }
            }
            a if a.len() > 1 && a.starts_with('-') && !a.starts_with("--") => {
                let flags = &a[1..];
                if flags.bytes().all(|b| b == b'v') {
                    level += flags.len() as i32;
                } else if flags.bytes().all(|b| b == b'q') {
                    level -= flags.len() as i32;
                }
            }
            _ => {}
        }
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation() -> Invocation {
        Invocation {
            root: "/repo".into(),
            targets: vec!["runtime/tests".into()],
            config_file: None,
            addopts: Vec::new(),
            extra_args: vec!["-x".into()],
            python: "python3".into(),
            env_allow: vec!["MY_TOKEN".into(), "PYTHONPATH".into()],
            deadline: Duration::from_secs(300),
            grace: Duration::from_secs(5),
            output_cap: 51_200,
            bytecode_cache: None,
        }
    }

    #[test]
    fn argv_puts_warden_options_after_extra_args_and_targets_after_a_separator() {
        let argv = invocation().argv(Utf8Path::new("/tmp/w/records.jsonl"));
        assert_eq!(
            &argv[..6],
            [
                "python3",
                "-P",
                "-c",
                BOOTSTRAP,
                "/tmp/w/records.jsonl",
                "-x"
            ]
        );
        let sep = argv.iter().position(|a| a == "--").unwrap();
        assert_eq!(&argv[sep + 1..], ["runtime/tests"]);
        for required in [
            "--rootdir=/repo",
            "--config-file=/dev/null",
            "--confcutdir=/repo",
            "no:cacheprovider",
            "addopts=",
            "log_file=",
            "verbosity_test_cases=auto",
            "--color=no",
            "-ra",
            "--verbosity=1",
        ] {
            let at = argv.iter().position(|a| a == required).unwrap();
            assert!(at > 5 && at < sep, "{required} misplaced");
        }

        // A configuration file inside the root is named, and conftests are cut at its directory.
        let mut inv = invocation();
        inv.config_file = Some("/repo/runtime/tox.ini".into());
        let argv = inv.argv(Utf8Path::new("/tmp/w/records.jsonl"));
        assert!(argv.contains(&"--config-file=/repo/runtime/tox.ini".to_owned()));
        assert!(argv.contains(&"--confcutdir=/repo/runtime".to_owned()));

        // The project's checked addopts come first, as pytest places them, then the agent's.
        inv.addopts = vec!["-m".into(), "not slow".into(), "-q".into()];
        inv.extra_args = vec!["-v".into()];
        let argv = inv.argv(Utf8Path::new("/tmp/w/records.jsonl"));
        assert_eq!(&argv[5..9], ["-m", "not slow", "-q", "-v"]);
        let addopts = argv.iter().position(|a| a == "addopts=").unwrap();
        assert!(addopts > 8, "pytest never reads the file's own addopts");
        assert!(argv.contains(&"--verbosity=1".to_owned()));
        assert!(argv.contains(&"log_file=".to_owned()));

        // With the logging plugin off, `log_file` is not named (`--strict-config` would stop).
        for off in [
            &["-p", "no:logging"][..],
            &["-pno:logging"],
            &["-xpno:logging"],
        ] {
            inv.addopts = off.iter().map(|a| a.to_string()).collect();
            let argv = inv.argv(Utf8Path::new("/tmp/w/records.jsonl"));
            assert!(!argv.contains(&"log_file=".to_owned()), "{off:?}");
        }
        inv.addopts = vec!["-k".into(), "no:logging".into()];
        let argv = inv.argv(Utf8Path::new("/tmp/w/records.jsonl"));
        assert!(argv.contains(&"log_file=".to_owned()));
    }

    #[test]
    fn verbosity_counts_flags_and_never_drops_below_one() {
        let v = |args: &[&str]| verbosity(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&[]), 0);
        assert_eq!(v(&["-v"]), 1);
        assert_eq!(v(&["-vv", "-x"]), 2);
        assert_eq!(v(&["-q"]), -1);
        assert_eq!(v(&["--verbose", "--verbose", "-q"]), 1);
        assert_eq!(v(&["-k", "vv"]), 0);
        let mut inv = invocation();
        inv.extra_args = vec!["-vv".into()];
        assert!(
            inv.argv(Utf8Path::new("/r.jsonl"))
                .contains(&"--verbosity=2".to_owned())
        );
        inv.extra_args = vec!["-qq".into()];
        assert!(
            inv.argv(Utf8Path::new("/r.jsonl"))
                .contains(&"--verbosity=1".to_owned())
        );
    }

    #[test]
    fn relative_interpreter_paths_are_taken_from_the_root() {
        let mut inv = invocation();
        assert_eq!(inv.program(), "python3");
        inv.python = ".venv/bin/python".into();
        assert_eq!(inv.program(), "/repo/.venv/bin/python");
        inv.python = "/usr/bin/python3".into();
        assert_eq!(inv.program(), "/usr/bin/python3");
    }

    #[test]
    fn the_environment_is_an_allowlist_with_reserved_names_never_passing() {
        let parent = [
            ("PATH", "/bin"),
            ("HOME", "/home/a"),
            ("LC_ALL", "C.UTF-8"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("MY_TOKEN", "allowed"),
            ("PYTHONPATH", "/evil"),
            ("PYTEST_ADDOPTS", "-p evil"),
            ("PYTEST_PLUGINS", "evil"),
            ("PYTHONSTARTUP", "/evil.py"),
            ("LD_PRELOAD", "/evil.so"),
            ("WARDEN_RUN_ID", "forged"),
            ("BASH_ENV", "/evil.sh"),
            ("pytest_addopts", "-p evil"),
            ("COV_CORE_SOURCE", "/evil"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = invocation().environment(
            parent,
            "abc",
            Utf8Path::new("/tmp/w/pycache"),
            Utf8Path::new("/tmp/w/site"),
            Some(Utf8Path::new("/tmp/w/notes")),
        );
        let names: Vec<&str> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "HOME",
                "LC_ALL",
                "MY_TOKEN",
                "PYTHONPYCACHEPREFIX",
                "PYTHONPATH",
                "PYTHONUNBUFFERED",
                "WARDEN_RUN_ID",
                "WARDEN_ROOT",
                "WARDEN_BYTECODE_NOTES"
            ]
        );
        assert_eq!(env[4].1, "/tmp/w/pycache");
        assert_eq!(env[5].1, "/tmp/w/site");
        assert_eq!(env[7].1, "abc");
        assert_eq!(env[8].1, invocation().root.as_str());
        assert_eq!(env[9].1, "/tmp/w/notes");
    }

    #[test]
    fn the_executor_drops_exactly_what_the_policy_refuses() {
        // Every name allowed by the caller passes unless the governance rule reserves it, so a
        // name a policy can list is always passed, and no reserved one ever is.
        let names = [
            "MY_TOKEN",
            "TZ",
            "ENVIRONMENT",
            "PYTHONPATH",
            "PYTHONSAFEPATH",
            "pythonhome",
            "PYTEST_PLUGINS",
            "LD_LIBRARY_PATH",
            "DYLD_INSERT_LIBRARIES",
            "COV_CORE_CONFIG",
            "WARDEN_PYTHON",
            "BASH_ENV",
            "ENV",
        ];
        let mut inv = invocation();
        inv.env_allow = names.iter().map(|n| n.to_string()).collect();
        let parent = names.map(|n| (OsString::from(n), OsString::from("x")));
        let passed: Vec<String> = inv
            .environment(
                parent,
                "abc",
                Utf8Path::new("/tmp/w/pycache"),
                Utf8Path::new("/tmp/w/site"),
                None,
            )
            .into_iter()
            // Warden sets `PYTHONPATH` itself; the caller's value ("x") must never pass.
            .filter(|(_, v)| v == "x")
            .map(|(k, _)| k.into_string().unwrap())
            .filter(|k| names.contains(&k.as_str()))
            .collect();
        let expected: Vec<&str> = names
            .into_iter()
            .filter(|n| reserved_env(n).is_none())
            .collect();
        assert_eq!(passed, ["MY_TOKEN", "TZ", "ENVIRONMENT"]);
        assert_eq!(passed, expected);
    }
}
