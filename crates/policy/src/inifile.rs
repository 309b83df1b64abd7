//! Which pytest configuration file a run reads: the one pytest would choose by itself if the
//! file system ended at the root.
//!
//! Left alone, pytest looks for its configuration file upward from the targets' common
//! directory, past the root, and loads every `conftest.py` from that file's directory down. A
//! `pytest.ini`, `tox.ini`, `setup.cfg` or `pyproject.toml` above the root would then set the
//! run's options (`pythonpath`, `python_files`, ...) and pull in conftests the policy never
//! saw. So Warden finds the file itself, with pytest's own rules (pytest 9.2,
//! `_pytest/config/findpaths.py`: `locate_config` and the loaders of `CONFIG_LOADERS_BY_NAME`)
//! but stopping at the root, and names it to pytest with `--config-file`, which stops pytest's
//! own search. The choice is about faithfulness only: whatever it finds lies inside the root,
//! so a rule read slightly differently from pytest can pick another file of the project, never
//! one outside it.
//!
//! The policy finds the file when it authorises a run (to judge the file's `addopts`, see
//! [`crate::addopts`]) and hands it to the executor in the permission, so the file pytest reads
//! is the file that was checked.

use std::io::Read;

use camino::{Utf8Path, Utf8PathBuf};

/// The files pytest takes configuration from, in its order of precedence within a directory.
const NAMES: [&str; 7] = [
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
];

/// Largest file read to decide whether it holds pytest configuration. A larger (or unreadable,
/// or undecodable) file is handed to pytest as if it did, and pytest reports what is wrong
/// with it, as it would have done on its own.
const MAX_BYTES: u64 = 1 << 20;

/// The configuration file for a run of `targets` (root-relative paths or node ids), or `None`
/// when there is none inside the root.
///
/// Like pytest: start from the targets' common directory (targets that do not exist are left
/// out; none left means the root), look in each directory up to the root for the files of
/// [`NAMES`] in order, and take the first that holds pytest configuration. A `pyproject.toml`
/// without any is the answer only when nothing else is found, the first one met on the way up.
pub(crate) fn locate(root: &Utf8Path, targets: &[String]) -> Option<Utf8PathBuf> {
    let start = common_directory(root, targets);
    let mut bare_pyproject = None;
    for dir in start.ancestors() {
        for name in NAMES {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            if holds_configuration(&path, name) {
                return Some(path);
            }
            if name == "pyproject.toml" && bare_pyproject.is_none() {
                bare_pyproject = Some(path);
            }
        }
        if dir == root {
            break;
        }
    }
    bare_pyproject
}

/// The directory pytest starts its search from: the deepest directory holding every existing
/// target (a file stands for its directory), inside the root.
fn common_directory(root: &Utf8Path, targets: &[String]) -> Utf8PathBuf {
    let mut common: Option<Utf8PathBuf> = None;
    for target in targets {
        // A node id names its file before the first `::`, as pytest's `NodeId.parse` reads it.
        let path = target.split_once("::").map_or(target.as_str(), |(p, _)| p);
        let full = root.join(path);
        let Ok(meta) = full.metadata() else { continue };
        let dir = if meta.is_dir() {
            full
        } else {
            match full.parent() {
                Some(parent) => parent.to_owned(),
                None => continue,
            }
        };
        common = Some(match common {
            None => dir,
            Some(common) => common
                .components()
                .zip(dir.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    // Targets are root-relative and normalised by the policy, so this only guards the search
    // against ever starting outside the root.
    common
        .filter(|dir| dir.starts_with(root))
        .unwrap_or_else(|| root.to_owned())
}

/// Whether pytest would take its configuration from `path`, an existing file called `name`.
///
/// One difference is deliberate: an INI file without a pytest section that pytest cannot parse
/// (which would stop pytest with an error) is passed over, as if it were well formed.
fn holds_configuration(path: &Utf8Path, name: &str) -> bool {
    let text = match name {
        // pytest's own files count even when empty.
        "pytest.toml" | ".pytest.toml" | "pytest.ini" | ".pytest.ini" => return true,
        _ => match read_bounded(path) {
            Some(text) => text,
            None => return true,
        },
    };
    match name {
        "pyproject.toml" => pyproject_has_pytest(&text),
        "tox.ini" => ini_sections(&text).any(|s| s == "pytest"),
        // A plain `[pytest]` section in setup.cfg makes pytest stop with an error saying so;
        // handing it over lets pytest say it.
        "setup.cfg" => ini_sections(&text).any(|s| s == "tool:pytest" || s == "pytest"),
        _ => false,
    }
}

/// The file's text, or `None` if it cannot be read, is too large, or is not UTF-8 (pytest
/// reads it as UTF-8 and would fail).
pub(crate) fn read_bounded(path: &Utf8Path) -> Option<String> {
    // Without waiting: a FIFO named like a configuration file must not hang Warden.
    let file = warden_rootfs::open_read(path, true).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > MAX_BYTES {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// pytest 9.2's `pyproject.toml` rule: configuration lives in `[tool.pytest]` (native TOML)
/// or `[tool.pytest.ini_options]`; an empty `[tool.pytest]` is none. A document pytest cannot
/// read (bad TOML, a `tool` or `tool.pytest` that is not a table) counts, so pytest reports it.
fn pyproject_has_pytest(text: &str) -> bool {
    let Ok(document) = toml::from_str::<toml::Table>(text) else {
        return true;
    };
    match document.get("tool") {
        None => false,
        Some(toml::Value::Table(tool)) => match tool.get("pytest") {
            None => false,
            Some(toml::Value::Table(pytest)) => !pytest.is_empty(),
            Some(_) => true,
        },
        Some(_) => true,
    }
}

/// The section names of an INI document as `iniconfig` (pytest's INI reader) finds them: a
/// line that starts with `[` and, once cut at the first `#` and `;` and trailing space
/// removed, ends with `]`.
fn ini_sections(text: &str) -> impl Iterator<Item = &str> {
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .split(python_line_break)
        .filter_map(|line| {
            let line = line.trim_end_matches(python_space);
            if !line.starts_with('[') {
                return None;
            }
            let line = line.split('#').next()?.trim_end_matches(python_space);
            let line = line.split(';').next()?.trim_end_matches(python_space);
            line.strip_suffix(']')
                .and_then(|l| l.strip_prefix('['))
                .filter(|name| !name.is_empty())
        })
}

/// Python's `str.splitlines` boundaries (`\r\n` splits twice, which only adds a blank line).
pub(crate) fn python_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{0b}'
            | '\u{0c}'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Python's `str.isspace`: Unicode white space plus the separators `\x1c`..`\x1f`.
pub(crate) fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree under a temporary directory: `(relative path, contents)`.
    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        for (path, text) in files {
            let path = base.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        (dir, base)
    }

    fn found(files: &[(&str, &str)], root: &str, targets: &[&str]) -> Option<String> {
        let (_dir, base) = tree(files);
        let root = base.join(root);
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        locate(&root, &targets).map(|p| p.strip_prefix(&base).unwrap().to_string())
    }

    const TEST: (&str, &str) = ("r/runtime/tests/test_a.py", "def test_a(): pass\n");

    #[test]
    fn the_search_stops_at_the_root() {
        let above = [TEST, ("pytest.ini", "[pytest]\n"), ("conftest.py", "")];
        assert_eq!(found(&above, "r", &["runtime/tests"]), None);
        let inside = [
            TEST,
            ("pytest.ini", "[pytest]\n"),
            ("r/tox.ini", "[pytest]\n"),
        ];
        assert_eq!(
            found(&inside, "r", &["runtime/tests"]).as_deref(),
            Some("r/tox.ini")
        );
    }

    #[test]
    fn the_nearest_directory_wins_then_pytests_order_of_names() {
        let files = [
            TEST,
            ("r/pytest.ini", ""),
            ("r/runtime/setup.cfg", "[tool:pytest]\n"),
            ("r/runtime/tox.ini", "[pytest]\n"),
        ];
        assert_eq!(
            found(&files, "r", &["runtime/tests"]).as_deref(),
            Some("r/runtime/tox.ini")
        );
        let files = [
            TEST,
            ("r/setup.cfg", "[tool:pytest]\n"),
            ("r/.pytest.ini", ""),
            ("r/pytest.toml", ""),
        ];
        assert_eq!(
            found(&files, "r", &["runtime/tests"]).as_deref(),
            Some("r/pytest.toml")
        );
    }

    #[test]
    fn the_search_starts_at_the_targets_common_directory() {
        let files = [
            TEST,
            ("r/runtime/tests/sub/test_b.py", ""),
            ("r/runtime/tests/sub/pytest.ini", ""),
            ("r/pytest.ini", ""),
        ];
        let node = "runtime/tests/sub/test_b.py::test_b[x::y]";
        assert_eq!(
            found(&files, "r", &[node]).as_deref(),
            Some("r/runtime/tests/sub/pytest.ini")
        );
        let both = ["runtime/tests/test_a.py::test_a", node];
        assert_eq!(found(&files, "r", &both).as_deref(), Some("r/pytest.ini"));
        // A target that does not exist does not count; with none left, the root is the start.
        assert_eq!(
            found(&files, "r", &["runtime/tests/sub/missing.py"]).as_deref(),
            Some("r/pytest.ini")
        );
    }

    #[test]
    fn files_count_by_pytests_rules() {
        let with = |name: &str, text: &str| found(&[TEST, (name, text)], "r", &["runtime/tests"]);
        let some = |name: &str| Some(name.to_owned());
        assert_eq!(with("r/pytest.ini", "# empty\n"), some("r/pytest.ini"));
        assert_eq!(with("r/tox.ini", "[tox]\nenv = py\n"), None);
        assert_eq!(
            with("r/tox.ini", "[tox]\n[pytest] ; here\n"),
            some("r/tox.ini")
        );
        let indented = "[tox]\nenv = py\n [pytest]\n";
        assert_eq!(
            with("r/tox.ini", indented),
            None,
            "a continuation, not a section"
        );
        assert_eq!(with("r/tox.ini", "\u{feff}[pytest]\r\n"), some("r/tox.ini"));
        assert_eq!(with("r/setup.cfg", "[metadata]\nname = x\n"), None);
        assert_eq!(with("r/setup.cfg", "[tool:pytest]\n"), some("r/setup.cfg"));
        assert_eq!(with("r/setup.cfg", "[pytest]\n"), some("r/setup.cfg"));
        let toml = |text: &str| with("r/pyproject.toml", text);
        assert_eq!(
            toml("[tool.pytest.ini_options]\n"),
            some("r/pyproject.toml")
        );
        assert_eq!(
            toml("[tool.pytest]\nminversion = \"9\"\n"),
            some("r/pyproject.toml")
        );
        assert_eq!(
            toml("[tool.pytest]\n"),
            some("r/pyproject.toml"),
            "only as a fallback"
        );
        assert_eq!(toml("not = [toml"), some("r/pyproject.toml"));
        assert_eq!(toml("[tool]\npytest = 1\n"), some("r/pyproject.toml"));
    }

    #[test]
    fn a_pyproject_without_pytest_configuration_is_only_a_fallback() {
        let files = [
            TEST,
            ("r/runtime/pyproject.toml", "[project]\nname = \"x\"\n"),
            ("r/tox.ini", "[pytest]\n"),
        ];
        assert_eq!(
            found(&files, "r", &["runtime/tests"]).as_deref(),
            Some("r/tox.ini")
        );
        let files = [
            TEST,
            ("r/runtime/pyproject.toml", "[tool.pytest]\n"),
            ("r/setup.cfg", "[tool:pytest]\n"),
        ];
        assert_eq!(
            found(&files, "r", &["runtime/tests"]).as_deref(),
            Some("r/setup.cfg"),
            "an empty [tool.pytest] holds no configuration"
        );
        let files = [
            TEST,
            ("r/runtime/pyproject.toml", "[tool.black]\n"),
            ("r/pyproject.toml", "[tool.ruff]\n"),
            ("pytest.ini", "[pytest]\n"),
        ];
        assert_eq!(
            found(&files, "r", &["runtime/tests"]).as_deref(),
            Some("r/runtime/pyproject.toml")
        );
    }

    #[test]
    fn files_pytest_cannot_read_are_left_to_pytest() {
        let big = format!("[tox]\n{}", "# padding\n".repeat(200_000));
        assert_eq!(
            found(&[TEST, ("r/tox.ini", &big)], "r", &["runtime/tests"]).as_deref(),
            Some("r/tox.ini")
        );
        let (_dir, base) = tree(&[TEST]);
        std::fs::write(base.join("r/tox.ini"), b"[tox]\n\xff\n").unwrap();
        let targets = ["runtime/tests".to_owned()];
        assert_eq!(
            locate(&base.join("r"), &targets),
            Some(base.join("r/tox.ini")),
            "not UTF-8"
        );
    }

    #[test]
    fn a_fifo_named_like_a_configuration_file_is_not_waited_on() {
        let (_dir, base) = tree(&[TEST]);
        let fifo = base.join("r/tox.ini");
        let made = std::process::Command::new("mkfifo")
            .arg(fifo.as_str())
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let root = base.join("r");
        std::thread::spawn(move || {
            let _ = tx.send(locate(&root, &["runtime/tests".to_owned()]));
        });
        let located = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("locating the configuration waited on a FIFO");
        // Not a file, so not a configuration file.
        assert_eq!(located, None, "{fifo}");
    }
}
