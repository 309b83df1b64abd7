//! The environment variables that never reach a governed run: one rule, used both to refuse a
//! policy whose `env_allow` names one and by the executor when it builds the child's
//! environment, so a name a policy can list is always a name that is passed.

/// Names that would let code, options or libraries into the run, with why (after "it").
const NAMES: &[(&str, &str)] = &[
    (
        "PYTEST_ADDOPTS",
        "adds pytest options past the argument allowlist",
    ),
    (
        "PYTEST_PLUGINS",
        "loads pytest plugins, which run arbitrary code",
    ),
    (
        "PYTHONPATH",
        "puts directories outside the root on the import path",
    ),
    ("PYTHONHOME", "replaces the Python installation"),
    ("PYTHONSTARTUP", "runs a start-up script"),
    (
        "PYTHONINSPECT",
        "opens an interactive prompt that waits for input",
    ),
    (
        "PYTHONWARNINGS",
        "can import arbitrary modules through warning categories",
    ),
    ("PYTHONBREAKPOINT", "imports a debugger hook by name"),
    ("PYTHONUSERBASE", "adds a user site-packages directory"),
    (
        "PYTHONEXECUTABLE",
        "changes what Python believes its executable is",
    ),
    (
        "PYTHONPLATLIBDIR",
        "changes where Python finds its own libraries",
    ),
    (
        "BASH_ENV",
        "names a start-up script that every non-interactive bash a test starts runs",
    ),
    (
        "ENV",
        "names a start-up script that every POSIX shell a test starts may run",
    ),
];

/// Whole families of names, by prefix, with why (after "it").
const PREFIXES: &[(&str, &str)] = &[
    (
        "PYTHON",
        "is one of Python's own settings, which change how the interpreter starts and what it loads",
    ),
    (
        "PYTEST_",
        "is one of pytest's own settings, which change its options, plugins and behaviour",
    ),
    ("LD_", "makes the dynamic linker load other libraries"),
    ("DYLD_", "makes the dynamic linker load other libraries"),
    ("COV_CORE_", "starts coverage collection through pytest-cov"),
    (
        "WARDEN_",
        "is Warden's own (its settings and the marker that finds a run's processes), not the tests'",
    ),
];

/// Why the environment variable `name` may never be passed to a governed run, or `None` if it
/// may. Names are compared without regard to ASCII case, so a spelling that differs only in
/// case is refused as well.
///
/// A policy whose `env_allow` lists a reserved name does not load; the executor never passes
/// one, whatever its caller asks.
///
/// ```
/// use warden_policy::reserved_env;
///
/// assert!(reserved_env("PYTHONPATH").unwrap().contains("import path"));
/// assert!(reserved_env("pytest_addopts").is_some());
/// assert!(reserved_env("BASH_ENV").is_some());
/// assert_eq!(reserved_env("MY_TOKEN"), None);
/// ```
pub fn reserved_env(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    NAMES
        .iter()
        .find(|(reserved, _)| *reserved == upper)
        .or_else(|| {
            PREFIXES
                .iter()
                .find(|(prefix, _)| upper.starts_with(prefix))
        })
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_families_are_reserved_whatever_their_case() {
        for name in [
            "PYTHONPATH",
            "PYTHONSAFEPATH",
            "PYTHON",
            "pythonpath",
            "PYTEST_ADDOPTS",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "COV_CORE_SOURCE",
            "WARDEN_RUN_ID",
            "BASH_ENV",
            "ENV",
            "env",
        ] {
            assert!(reserved_env(name).is_some(), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "LANG",
            "LC_ALL",
            "TMPDIR",
            "MY_TOKEN",
            "ENVIRONMENT",
            "PYTEST",
            "LD",
        ] {
            assert_eq!(reserved_env(name), None, "{name}");
        }
    }

    #[test]
    fn specific_names_give_their_own_reason() {
        assert_eq!(
            reserved_env("PYTEST_ADDOPTS"),
            Some("adds pytest options past the argument allowlist")
        );
        assert!(
            reserved_env("PYTEST_XDIST_AUTO_NUM_WORKERS")
                .unwrap()
                .contains("pytest's own")
        );
    }
}
