//! The yardstick's Python: a virtualenv under `target/suites/venv` with the pinned pytest, the
//! projects' pinned test dependencies, and the projects themselves installed from their sdists,
//! which are downloaded from PyPI once (hash-checked) and kept under `target/suites/sdists`.
//! Nothing downloaded ever enters the repository.

use std::fmt::Write as _;
use std::fs;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};

use super::SuitesError;
use super::projects::{PROJECTS, Project};
use crate::process::{Unsuccessful, describe, succeed};
use crate::venv::{self, VenvError};

/// What [`prepare`] made.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// The virtualenv's directory.
    pub(crate) venv: Utf8PathBuf,
    /// Its interpreter (not canonicalised: the link's own path makes Python use the venv).
    pub(crate) python: Utf8PathBuf,
    /// Where the sdists are.
    pub(crate) sdists: Utf8PathBuf,
}

/// Makes sure the sdists of all the projects are downloaded and the virtualenv has exactly the
/// pinned packages and these projects (all of them, whichever are run: they depend on each
/// other, trio on attrs for one). A stamp file records what the venv was made from; any change
/// (a pin, a project) makes it again from scratch, so no stale package survives.
pub(crate) fn prepare(root: &Utf8Path) -> Result<Setup, SuitesError> {
    let projects = PROJECTS;
    let dir = root.join("target").join("suites");
    let setup = Setup {
        venv: dir.join("venv"),
        python: venv::python_in(&dir.join("venv")),
        sdists: dir.join("sdists"),
    };
    let pytest_pins = root.join("xtask").join("requirements.txt");
    let suite_pins = root.join("xtask").join("suites-requirements.txt");
    let pytest_text = read(&pytest_pins)?;
    let suite_text = read(&suite_pins)?;
    venv::pinned_pytest(&pytest_pins, &pytest_text)?;
    match venv::pinned_pytest(&suite_pins, &suite_text) {
        Ok(_) | Err(VenvError::NoPytest { .. }) => {}
        Err(other) => return Err(other.into()),
    }
    let stamp_path = setup.venv.join("warden-suites.stamp");
    let mut stamp = format!("{pytest_text}\n{suite_text}\n");
    for p in projects {
        let _ = writeln!(stamp, "{} {}", p.sdist, p.sha256);
    }
    let current = fs::read_to_string(&stamp_path).ok();
    let fresh = current.as_deref() == Some(stamp.as_str()) && runs(&setup.python);
    if !fresh {
        venv::create(&setup.venv, venv::BASE_PYTHON)?;
    }
    download(&setup, projects)?;
    if fresh {
        return Ok(setup);
    }
    let mut install = pip(&setup.python, "install");
    // Wheels only for the dependencies: installing them runs no package's build code.
    install
        .args(["--no-deps", "--only-binary", ":all:", "--requirement"])
        .arg(&pytest_pins)
        .arg("--requirement")
        .arg(&suite_pins);
    checked(&mut install)?;
    // The projects themselves are built from their sdists, as the yardstick promises; the
    // pinned requirements above already hold every dependency they need.
    let mut projects_install = pip(&setup.python, "install");
    projects_install.arg("--no-deps");
    for p in projects {
        projects_install.arg(setup.sdists.join(p.sdist));
    }
    checked(&mut projects_install)?;
    // Every installed package's requirements must be met by the pins, or a pin is missing.
    checked(&mut pip(&setup.python, "check"))?;
    fs::write(&stamp_path, stamp).map_err(super::io_error(format!("write {stamp_path}")))?;
    Ok(setup)
}

/// Downloads the sdists not yet under `target/suites/sdists`, checking each one's hash.
fn download(setup: &Setup, projects: &[Project]) -> Result<(), SuitesError> {
    let missing: Vec<&Project> = projects
        .iter()
        .filter(|p| !setup.sdists.join(p.sdist).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(&setup.sdists)
        .map_err(super::io_error(format!("create {}", setup.sdists)))?;
    let list = setup.sdists.join("download-requirements.txt");
    let text: String = missing
        .iter()
        .map(|p| format!("{}=={} --hash=sha256:{}\n", p.name, p.version, p.sha256))
        .collect();
    fs::write(&list, text).map_err(super::io_error(format!("write {list}")))?;
    let mut command = pip(&setup.python, "download");
    command
        .args(["--no-deps", "--no-binary", ":all:", "--require-hashes"])
        .arg("--dest")
        .arg(&setup.sdists)
        .arg("--requirement")
        .arg(&list);
    checked(&mut command)?;
    for p in missing {
        let path = setup.sdists.join(p.sdist);
        if !path.is_file() {
            return Err(SuitesError::Unexpected(format!(
                "pip downloaded {} {} but {path} is not there (did PyPI rename the file?)",
                p.name, p.version
            )));
        }
    }
    Ok(())
}

/// Unpacks `project`'s sdist into `dest` (which must exist) with Python's own `tarfile`, so no
/// `tar` program is needed; returns the project's root.
pub(crate) fn unpack(
    setup: &Setup,
    project: &Project,
    dest: &Utf8Path,
) -> Result<Utf8PathBuf, SuitesError> {
    let mut command = Command::new(&setup.python);
    command
        .args(["-m", "tarfile", "--extract"])
        .arg(setup.sdists.join(project.sdist))
        .arg(dest)
        .stdin(Stdio::null());
    checked(&mut command)?;
    let root = dest.join(project.unpacked_dir());
    if root.is_dir() {
        Ok(root)
    } else {
        Err(SuitesError::Unexpected(format!(
            "{} did not unpack into {root}",
            project.sdist
        )))
    }
}

fn read(path: &Utf8Path) -> Result<String, SuitesError> {
    fs::read_to_string(path).map_err(super::io_error(format!("read {path}")))
}

fn runs(python: &Utf8Path) -> bool {
    Command::new(python)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn pip(python: &Utf8Path, verb: &str) -> Command {
    let mut command = Command::new(python);
    command
        .args(["-m", "pip", verb])
        .args(["--disable-pip-version-check", "--no-input"])
        .stdin(Stdio::null());
    if verb != "check" {
        command.arg("--quiet");
    }
    command
}

fn checked(command: &mut Command) -> Result<(), SuitesError> {
    println!("==> suites: {}", describe(command));
    succeed(command).map_err(|failure| match failure {
        Unsuccessful::Spawn { command, source } => SuitesError::Spawn { command, source },
        Unsuccessful::Failed { command, status } => SuitesError::Failed { command, status },
    })
}
