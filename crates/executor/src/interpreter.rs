//! Which Python interpreter a run uses: the project's, found the way its users expect.
//!
//! In order, the first that applies:
//!
//! 1. the policy's `limits.python`: the operator's word wins over everything;
//! 2. the runner's own choice ([`PytestRunner::with_python`](crate::PytestRunner::with_python),
//!    `warden verify --python`);
//! 3. `WARDEN_PYTHON` in Warden's environment: an explicit, Warden-specific setting, so it
//!    beats the ambient ones below (a shell's leftover virtualenv should not silently override
//!    what was configured for Warden);
//! 4. an active virtualenv: `$VIRTUAL_ENV/bin/python`, when it exists;
//! 5. the project's own virtualenv: `<root>/.venv/bin/python`, then `<root>/venv/bin/python`,
//!    when one exists (the layout of `python -m venv .venv`, uv and Poetry's in-project venvs);
//! 6. `python3` on `PATH`.
//!
//! A virtualenv inside the root is in the agent's hands like every file there (see the threat
//! model): a policy that names `python` (an absolute path outside the root) takes it out of
//! the agent's reach. The interpreter is never canonicalised: a venv's `bin/python` is usually
//! a symlink, and Python finds the venv (`pyvenv.cfg`) from the path it was started by.

use camino::Utf8Path;
use warden_taxonomy::InterpreterChoice;

/// The environment variable naming the interpreter when neither the policy nor the runner does.
pub const PYTHON_ENV_VAR: &str = "WARDEN_PYTHON";

/// The interpreter used when nothing names one.
pub const DEFAULT_PYTHON: &str = "python3";

/// The environment variable an activated virtualenv sets.
const VIRTUAL_ENV: &str = "VIRTUAL_ENV";

/// The virtualenv directories looked for in the root, in order.
const ROOT_VENVS: [&str; 2] = [".venv", "venv"];

/// What the choice can draw on; the process environment is passed in so tests need not touch it.
pub(crate) struct Sources<'a> {
    pub(crate) policy: Option<&'a str>,
    pub(crate) runner: Option<&'a str>,
    pub(crate) warden_python: Option<&'a str>,
    pub(crate) virtual_env: Option<&'a str>,
    pub(crate) root: &'a Utf8Path,
}

impl<'a> Sources<'a> {
    /// The sources of a run under `root`, with Warden's own environment.
    pub(crate) fn from_env(
        policy: Option<&'a str>,
        runner: Option<&'a str>,
        env: &'a Env,
        root: &'a Utf8Path,
    ) -> Sources<'a> {
        Sources {
            policy,
            runner,
            warden_python: env.warden_python.as_deref(),
            virtual_env: env.virtual_env.as_deref(),
            root,
        }
    }
}

/// The variables of Warden's environment the choice reads.
pub(crate) struct Env {
    warden_python: Option<String>,
    virtual_env: Option<String>,
}

impl Env {
    pub(crate) fn current() -> Env {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        Env {
            warden_python: var(PYTHON_ENV_VAR),
            virtual_env: var(VIRTUAL_ENV),
        }
    }
}

fn choice(path: impl Into<String>, source: &str, reason: String) -> InterpreterChoice {
    InterpreterChoice {
        path: path.into(),
        source: source.to_owned(),
        reason,
    }
}

/// The interpreter for a run, and why (see the module docs for the order).
pub(crate) fn choose(sources: &Sources<'_>) -> InterpreterChoice {
    if let Some(python) = sources.policy {
        return choice(python, "policy", "the policy's `python`".to_owned());
    }
    if let Some(python) = sources.runner {
        return choice(
            python,
            "option",
            "`--python` (the runner's interpreter; the policy names none)".to_owned(),
        );
    }
    if let Some(python) = sources.warden_python {
        return choice(
            python,
            "warden_python",
            format!("{PYTHON_ENV_VAR} (neither the policy nor `--python` names one)"),
        );
    }
    let mut passed = Vec::new();
    if let Some(venv) = sources.virtual_env {
        let python = Utf8Path::new(venv).join("bin/python");
        if python.is_file() {
            return choice(
                python.into_string(),
                "virtual_env",
                format!(
                    "the active virtualenv ({VIRTUAL_ENV}={venv}; neither the policy, `--python` nor {PYTHON_ENV_VAR} names one)"
                ),
            );
        }
        passed.push(format!("{VIRTUAL_ENV}={venv} has no bin/python"));
    }
    for dir in ROOT_VENVS {
        let python = sources.root.join(dir).join("bin/python");
        if python.is_file() {
            return choice(
                python.into_string(),
                "root_venv",
                format!(
                    "the project's virtualenv `{dir}` in the root (neither the policy, `--python`, {PYTHON_ENV_VAR} nor an active {VIRTUAL_ENV} names one)"
                ),
            );
        }
    }
    passed.push("no .venv or venv in the root".to_owned());
    choice(
        DEFAULT_PYTHON,
        "default",
        format!(
            "`{DEFAULT_PYTHON}` on PATH: nothing else names one ({})",
            passed.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venv(base: &Utf8Path, dir: &str) -> String {
        let bin = base.join(dir).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("python"), "").unwrap();
        bin.join("python").into_string()
    }

    #[test]
    fn explicit_choices_win_then_virtualenvs_then_python3() {
        let dir = tempfile::tempdir().unwrap();
        let base = Utf8Path::from_path(dir.path()).unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let active = base.join("active");
        let active_python = venv(base, "active");
        let mut sources = Sources {
            policy: Some("/usr/bin/python3.12"),
            runner: Some("/opt/py"),
            warden_python: Some("/env/py"),
            virtual_env: Some(active.as_str()),
            root: &root,
        };
        let chosen = |s: &Sources<'_>| {
            let c = choose(s);
            (c.path, c.source)
        };
        assert_eq!(
            chosen(&sources),
            ("/usr/bin/python3.12".into(), "policy".into())
        );
        sources.policy = None;
        assert_eq!(chosen(&sources), ("/opt/py".into(), "option".into()));
        sources.runner = None;
        assert_eq!(chosen(&sources), ("/env/py".into(), "warden_python".into()));
        sources.warden_python = None;
        assert_eq!(chosen(&sources), (active_python, "virtual_env".into()));
        // An active virtualenv wins over the root's; without one the root's .venv, then venv.
        let dot_venv = venv(&root, ".venv");
        let plain_venv = venv(&root, "venv");
        sources.virtual_env = Some("/nonexistent/venv");
        assert_eq!(chosen(&sources), (dot_venv.clone(), "root_venv".into()));
        std::fs::remove_file(&dot_venv).unwrap();
        sources.virtual_env = None;
        assert_eq!(chosen(&sources), (plain_venv.clone(), "root_venv".into()));
        std::fs::remove_file(&plain_venv).unwrap();
        let fallback = choose(&Sources {
            virtual_env: Some("/nonexistent/venv"),
            ..sources
        });
        assert_eq!(fallback.path, "python3");
        assert!(
            fallback.reason.contains("has no bin/python"),
            "{}",
            fallback.reason
        );
    }
}
