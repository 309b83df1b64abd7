//! The real projects of the yardstick: which source distribution, and how their own developers
//! run their tests.

/// One project: an exact source distribution on PyPI and its documented test command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Project {
    /// The distribution's name on PyPI, as `pip download` takes it.
    pub(crate) name: &'static str,
    /// The exact version.
    pub(crate) version: &'static str,
    /// The sdist's SHA-256 as PyPI lists it: `pip download --require-hashes` checks it, so a
    /// replaced file on the index is refused rather than measured.
    pub(crate) sha256: &'static str,
    /// The sdist's file name, and (without `.tar.gz`) the directory it unpacks into.
    pub(crate) sdist: &'static str,
    /// The test tree, root-relative: the ini file's `testpaths`, or `tests` when it has none.
    /// Warden's policy allows it and `warden verify` runs it.
    pub(crate) target: &'static str,
    /// The arguments after `pytest` in the project's documented command, as far as they
    /// concern what runs and what is printed (the bare run passes them, and so does Warden).
    pub(crate) args: &'static [&'static str],
    /// Where the command comes from, and what was left out of it and why.
    pub(crate) source: &'static str,
}

impl Project {
    /// The directory the sdist unpacks into.
    pub(crate) fn unpacked_dir(&self) -> &'static str {
        self.sdist.strip_suffix(".tar.gz").unwrap_or(self.sdist)
    }

    /// `name version`, for tables and messages.
    pub(crate) fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// Whether the documented command starts pytest-xdist workers: Warden's policy must opt
    /// in (`[pytest] allow_options = ["xdist"]`).
    pub(crate) fn uses_xdist(&self) -> bool {
        self.args
            .iter()
            .any(|a| *a == "-n" || a.starts_with("--numprocesses"))
    }

    /// The documented command as a person types it.
    pub(crate) fn command(&self) -> String {
        std::iter::once("pytest")
            .chain(self.args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The yardstick's projects. Versions are pinned exactly (with the sdist's hash); changing one
/// changes what is measured, so update the README's table with it.
pub(crate) const PROJECTS: &[Project] = &[
    Project {
        name: "attrs",
        version: "26.1.0",
        sha256: "d03ceb89cb322a8fd706d4fb91940737b6642aa36998fe130a9bc96c985eff32",
        sdist: "attrs-26.1.0.tar.gz",
        target: "tests",
        args: &["-n", "auto"],
        source: "tox.ini `tests` env: `pytest {posargs:-n auto}` (pytest-xdist, one worker per \
                 CPU; Warden's policy opts in with `[pytest] allow_options = [\"xdist\"]`)",
    },
    Project {
        name: "click",
        version: "8.5.1",
        sha256: "9bbfada76703fd1d784b83eea012e3e8c6a001a876543ef104fa56aaaeb072b4",
        sdist: "click-8.5.1.tar.gz",
        target: "tests",
        args: &["-v", "--tb=short"],
        source: "pyproject.toml `[tool.tox.env_run_base]`: `pytest -v --tb=short \
                 --basetemp={env_tmp_dir}` (the tox-only `--basetemp` left out)",
    },
    Project {
        name: "jinja2",
        version: "3.1.6",
        sha256: "0137fb05990d35f1275a587e9aee6d56da821fc83491a0fb838183be43f66d6d",
        sdist: "jinja2-3.1.6.tar.gz",
        target: "tests",
        args: &["-v", "--tb=short"],
        source: "tox.ini: `pytest -v --tb=short --basetemp={envtmpdir}` (the tox-only \
                 `--basetemp` left out)",
    },
    Project {
        name: "more-itertools",
        version: "11.2.1",
        sha256: "cbf08fd0af284dc69718b9b76a8e6203df624d70209ea511e4219d350c856f63",
        sdist: "more_itertools-11.2.1.tar.gz",
        target: "tests",
        args: &["-v"],
        source: "tox.ini and Makefile: `python -m unittest -v`; pytest runs the same unittest \
                 suite, `-v` as documented (pytest counts subtests only when verbosity is not 0)",
    },
    Project {
        name: "toolz",
        version: "1.2.0",
        sha256: "9667a038e9d6ecba37995e26cb2f59ec6420b6ad8dd9677de59db9b956b08490",
        sdist: "toolz-1.2.0.tar.gz",
        target: "toolz",
        args: &[],
        source: "pyproject.toml: `pytest` with `testpaths = [\"toolz\"]`",
    },
];

/// The projects named in `names` (all when empty), or the first unknown name.
pub(crate) fn select(names: &[String]) -> Result<Vec<Project>, String> {
    if names.is_empty() {
        return Ok(PROJECTS.to_vec());
    }
    names
        .iter()
        .map(|name| {
            PROJECTS
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(name))
                .copied()
                .ok_or_else(|| name.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_exact_pins_with_hashes_and_matching_file_names() {
        for p in PROJECTS {
            assert_eq!(p.sha256.len(), 64, "{}", p.name);
            assert!(
                p.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}",
                p.name
            );
            assert!(p.sdist.ends_with(".tar.gz"), "{}", p.sdist);
            let normalised = p.name.replace('-', "_");
            assert_eq!(
                p.unpacked_dir(),
                format!("{normalised}-{}", p.version),
                "{}",
                p.name
            );
            assert!(!p.target.is_empty() && !p.target.starts_with('/'));
        }
        let names: Vec<&str> = PROJECTS.iter().map(|p| p.name).collect();
        for required in ["attrs", "jinja2", "toolz", "click", "more-itertools"] {
            assert!(names.contains(&required), "{required} missing");
        }
    }

    #[test]
    fn selection_by_name_and_unknown_names() {
        assert_eq!(select(&[]).unwrap().len(), PROJECTS.len());
        let picked = select(&["Click".to_owned(), "toolz".to_owned()]).unwrap();
        assert_eq!(
            picked.iter().map(|p| p.name).collect::<Vec<_>>(),
            ["click", "toolz"]
        );
        assert_eq!(select(&["nope".to_owned()]).unwrap_err(), "nope");
        assert_eq!(PROJECTS[1].command(), "pytest -v --tb=short");
    }
}
