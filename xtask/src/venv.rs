//! The Python virtualenv with pytest that the tests (and the demo) run against.
//!
//! It lives at `target/venv`, is made once with `python3 -m venv`, and gets the exact pins of
//! `xtask/requirements.txt` from PyPI. It is reused while its pytest is the pinned version.

use std::fs;
use std::io;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};

use crate::process::{Unsuccessful, describe, succeed};

/// The interpreter used to create the virtualenv.
pub(crate) const BASE_PYTHON: &str = "python3";
/// pytest 9 needs Python 3.10; Warden needs 3.11 (`-P`, which keeps modules in the root from
/// shadowing pytest and the standard library; older interpreters are refused).
const MIN_PYTHON: (u32, u32) = (3, 11);

#[derive(Debug, thiserror::Error)]
pub(crate) enum VenvError {
    #[error("cannot read {path}: {source}")]
    Requirements {
        path: Utf8PathBuf,
        source: io::Error,
    },
    #[error("{path}:{line}: `{text}` is not an exact pin; write it as `name==version`")]
    Unpinned {
        path: Utf8PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path} does not pin pytest (add a line `pytest==VERSION`)")]
    NoPytest { path: Utf8PathBuf },
    #[error(
        "`{0}` was not found on PATH; install Python {major}.{minor} or newer (with its venv \
         module) so that `{0}` runs it",
        major = MIN_PYTHON.0,
        minor = MIN_PYTHON.1
    )]
    NoPython(String),
    #[error(
        "`{program}` is Python {found}; pytest needs {major}.{minor} or newer",
        major = MIN_PYTHON.0,
        minor = MIN_PYTHON.1
    )]
    OldPython { program: String, found: String },
    #[error(
        "`{command}` failed ({status}); on Debian and Ubuntu the venv module is in the \
         `python3-venv` package"
    )]
    Create { command: String, status: String },
    #[error("`{command}` failed ({status}); see pip's messages above (is PyPI reachable?)")]
    Install { command: String, status: String },
    #[error("could not run `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
    #[error(
        "the virtualenv at {dir} still has no pytest {expected} after installing (found: {found})"
    )]
    StillMissing {
        dir: Utf8PathBuf,
        expected: String,
        found: String,
    },
}

/// Makes sure the repository's virtualenv exists with the pinned pytest; returns the absolute
/// path of its Python.
pub(crate) fn ensure(root: &Utf8Path) -> Result<Utf8PathBuf, VenvError> {
    ensure_at(
        &root.join("target").join("venv"),
        &root.join("xtask").join("requirements.txt"),
        BASE_PYTHON,
    )
}

fn ensure_at(
    dir: &Utf8Path,
    requirements: &Utf8Path,
    base_python: &str,
) -> Result<Utf8PathBuf, VenvError> {
    let text = fs::read_to_string(requirements).map_err(|source| VenvError::Requirements {
        path: requirements.to_owned(),
        source,
    })?;
    let pinned = pinned_pytest(requirements, &text)?;
    let python = python_in(dir);
    if installed_pytest(&python).as_deref() == Some(pinned.as_str())
        && has_every_pin(&python, &text)
    {
        return Ok(python);
    }
    if !runs(Command::new(&python).arg("--version")) {
        create(dir, base_python)?;
    }
    install(&python, requirements)?;
    match installed_pytest(&python) {
        Some(found) if found == pinned => Ok(python),
        found => Err(VenvError::StillMissing {
            dir: dir.to_owned(),
            expected: pinned,
            found: found.unwrap_or_else(|| "none".to_owned()),
        }),
    }
}

/// The venv's interpreter. Not canonicalised: the venv's `python` is a symlink to the base
/// interpreter, and only the link's own path makes Python use the venv.
pub(crate) fn python_in(dir: &Utf8Path) -> Utf8PathBuf {
    if cfg!(windows) {
        dir.join("Scripts").join("python.exe")
    } else {
        dir.join("bin").join("python")
    }
}

/// The pytest version pinned in a requirements file, after checking every line is an exact pin.
pub(crate) fn pinned_pytest(path: &Utf8Path, text: &str) -> Result<String, VenvError> {
    let mut pytest = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let pin = line.split_once("==").filter(|(name, version)| {
            let valid = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            };
            valid(name.trim()) && valid(version.trim())
        });
        let Some((name, version)) = pin else {
            return Err(VenvError::Unpinned {
                path: path.to_owned(),
                line: index + 1,
                text: line.to_owned(),
            });
        };
        if name.trim().eq_ignore_ascii_case("pytest") {
            pytest = Some(version.trim().to_owned());
        }
    }
    pytest.ok_or_else(|| VenvError::NoPytest {
        path: path.to_owned(),
    })
}

/// The version `python -m pytest --version` reports, if it runs.
fn installed_pytest(python: &Utf8Path) -> Option<String> {
    let output = Command::new(python)
        .args(["-m", "pytest", "--version"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    // pytest 7+ prints to stdout, older ones to stderr.
    let text = [output.stdout, output.stderr].concat();
    String::from_utf8_lossy(&text).lines().find_map(|line| {
        line.trim()
            .strip_prefix("pytest ")
            .map(|v| v.trim().to_owned())
    })
}

/// Whether every distribution pinned in `requirements` is installed at its pinned version (a
/// venv made before a pin was added is brought up to date, not reused as it is).
fn has_every_pin(python: &Utf8Path, requirements: &str) -> bool {
    const CHECK: &str = "import sys\nfrom importlib.metadata import version\n\
        sys.exit(any(version(p.split('==')[0].strip()) != p.split('==')[1].strip() for p in sys.argv[1:]))";
    let pins = requirements
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty());
    runs(Command::new(python).args(["-c", CHECK]).args(pins))
}

fn runs(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

pub(crate) fn create(dir: &Utf8Path, base_python: &str) -> Result<(), VenvError> {
    let version = Command::new(base_python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => VenvError::NoPython(base_python.to_owned()),
            _ => VenvError::Spawn {
                command: base_python.to_owned(),
                source,
            },
        })?;
    let found = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let parsed = found
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)));
    if !version.status.success() || parsed.is_none_or(|v| v < MIN_PYTHON) {
        return Err(VenvError::OldPython {
            program: base_python.to_owned(),
            found: if found.is_empty() {
                "unknown".to_owned()
            } else {
                found
            },
        });
    }
    println!("==> venv: creating {dir} with {base_python} {found}");
    // --clear: a half-made or stale venv (say, its base Python was removed) is rebuilt whole.
    let mut command = Command::new(base_python);
    command
        .args(["-m", "venv", "--clear"])
        .arg(dir)
        .stdin(Stdio::null());
    check(&mut command, |command, status| VenvError::Create {
        command,
        status,
    })
}

fn install(python: &Utf8Path, requirements: &Utf8Path) -> Result<(), VenvError> {
    let mut command = Command::new(python);
    command
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        // Wheels only: installing never runs a package's build code.
        .args(["--only-binary", ":all:", "--requirement"])
        .arg(requirements)
        .stdin(Stdio::null());
    println!("==> venv: {}", describe(&command));
    check(&mut command, |command, status| VenvError::Install {
        command,
        status,
    })
}

fn check(
    command: &mut Command,
    failed: impl FnOnce(String, String) -> VenvError,
) -> Result<(), VenvError> {
    succeed(command).map_err(|failure| match failure {
        Unsuccessful::Spawn { command, source } => VenvError::Spawn { command, source },
        Unsuccessful::Failed { command, status } => failed(command, status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8(dir: &tempfile::TempDir) -> Utf8PathBuf {
        Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap()
    }

    #[test]
    fn the_repository_requirements_pin_pytest() {
        let path = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("requirements.txt");
        let text = fs::read_to_string(&path).unwrap();
        let version = pinned_pytest(&path, &text).unwrap();
        assert!(version.starts_with("9."), "pytest {version}");
    }

    #[test]
    fn requirements_must_be_exact_pins_including_pytest() {
        let path = Utf8Path::new("req.txt");
        assert_eq!(
            pinned_pytest(path, "# c\n\npluggy==1.7.0\nPyTest == 9.2.0  # why\n").unwrap(),
            "9.2.0"
        );
        for (text, line) in [
            ("pytest>=9\n", 1),
            ("pluggy==1.7.0\npytest\n", 2),
            ("pytest==\n", 1),
            ("pytest==9.2.0; python_version>'3'\n", 1),
        ] {
            match pinned_pytest(path, text) {
                Err(VenvError::Unpinned { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            pinned_pytest(path, "pluggy==1.7.0\n"),
            Err(VenvError::NoPytest { .. })
        ));
    }

    #[cfg(unix)]
    fn fake_python(dir: &Utf8Path, script: &str) {
        let python = python_in(dir);
        fs::create_dir_all(python.parent().unwrap()).unwrap();
        warden_e2e::write_executable(python.as_std_path(), &format!("#!/bin/sh\n{script}\n"));
    }

    #[cfg(unix)]
    #[test]
    fn a_venv_whose_pytest_is_the_pinned_version_is_reused_as_is() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = utf8(&tmp);
        let requirements = dir.join("requirements.txt");
        fs::write(&requirements, "pytest==9.2.0\n").unwrap();
        fake_python(&dir.join("venv"), "echo 'pytest 9.2.0'");
        // The base Python does not exist: reusing must not need it.
        let python = ensure_at(&dir.join("venv"), &requirements, "no-such-python-xtask").unwrap();
        assert_eq!(python, dir.join("venv/bin/python"));
        assert!(python.is_absolute());
    }

    #[cfg(unix)]
    #[test]
    fn a_venv_with_another_pytest_is_reinstalled() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = utf8(&tmp);
        let requirements = dir.join("requirements.txt");
        fs::write(&requirements, "pytest==9.2.0\n").unwrap();
        // A venv that reports an old pytest and logs how it is called; "pip" then fails.
        let log = dir.join("calls.log");
        fake_python(
            &dir.join("venv"),
            &format!(
                "echo \"$*\" >> {log}\ncase \"$*\" in *pytest*) echo 'pytest 8.0.0';; *pip*) exit 3;; esac"
            ),
        );
        match ensure_at(&dir.join("venv"), &requirements, "no-such-python-xtask") {
            Err(VenvError::Install { command, status }) => {
                assert!(command.contains("pip install --quiet"), "{command}");
                assert!(command.contains("--requirement"), "{command}");
                assert!(status.contains('3'), "{status}");
            }
            other => panic!("{other:?}"),
        }
        let calls = fs::read_to_string(log).unwrap();
        assert!(calls.contains("-m pip install"), "{calls}");
    }

    #[test]
    fn a_missing_base_python_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = utf8(&tmp);
        let requirements = dir.join("requirements.txt");
        fs::write(&requirements, "pytest==9.2.0\n").unwrap();
        let error =
            ensure_at(&dir.join("venv"), &requirements, "no-such-python-xtask").unwrap_err();
        assert!(
            matches!(&error, VenvError::NoPython(p) if p == "no-such-python-xtask"),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("was not found on PATH"),
            "{error}"
        );
    }
}
