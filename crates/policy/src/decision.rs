//! What the policy says about a request: a [`Decision`], and for a "yes", an [`Authorized`].

use std::collections::HashSet;
use std::sync::Arc;

use camino::Utf8Path;
use serde::Serialize;
use warden_taxonomy::DecisionRecord;

use crate::addopts::ProjectOptions;
use crate::policy::{Kind, Limits, Policy};
use crate::request::ToolRequest;
use crate::root::Root;
use crate::target::{Target, shown};

/// The policy's answer to one request, with the reason and the rules that decided it.
///
/// For a denial by a deny rule, `matched_rules` names the deny rule(s); for an allow, the allow
/// rule(s). When nothing allowed the request (default deny), or a built-in check refused it
/// before any rule applied (a malformed target, an argument off the allowlist, a path that
/// escapes the root), `matched_rules` is empty and `reason` says exactly what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the request may go ahead.
    pub allowed: bool,
    /// Why, in words a person or an agent can act on.
    pub reason: String,
    /// The ids of the policy rules that decided it.
    pub matched_rules: Vec<String>,
}

impl Decision {
    /// A denial that no rule decided.
    pub(crate) fn deny(reason: impl Into<String>) -> Decision {
        Decision {
            allowed: false,
            reason: reason.into(),
            matched_rules: Vec::new(),
        }
    }

    /// The decision as it is recorded in reports and the evidence ledger.
    pub fn record(&self) -> DecisionRecord {
        DecisionRecord {
            allowed: self.allowed,
            reason: self.reason.clone(),
            matched_rules: self.matched_rules.clone(),
        }
    }
}

/// The outcome of [`Policy::authorize`]: permission to act, or the denial.
#[derive(Debug, Clone)]
#[must_use = "a verdict is the only way to learn whether the request may go ahead"]
pub enum Verdict {
    /// The request is allowed; the [`Authorized`] value is the permission to carry it out.
    Allowed(Authorized),
    /// The request is denied.
    Denied(Decision),
}

impl Verdict {
    /// The decision either way.
    pub fn decision(&self) -> &Decision {
        match self {
            Verdict::Allowed(authorized) => authorized.decision(),
            Verdict::Denied(decision) => decision,
        }
    }

    /// Whether the request was allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed(_))
    }

    /// The permission, or the denial as the error.
    pub fn into_result(self) -> Result<Authorized, Decision> {
        match self {
            Verdict::Allowed(authorized) => Ok(authorized),
            Verdict::Denied(decision) => Err(decision),
        }
    }
}

/// Permission to carry out one allowed request: the resolved targets, the checked extra
/// arguments, the decision and the limits that apply.
///
/// Only this crate can make one, and only [`Policy::authorize`] does (plus [`Authorized::narrow`],
/// which re-checks). Code that runs tests takes an `Authorized` rather than a request, so nothing
/// can run without a policy decision, and that is checked by the compiler: the fields are
/// private, there is no public constructor, no `Default` and no `Deserialize`.
///
/// Building one by hand from outside does not compile, not even by copying another:
///
/// ```compile_fail,E0451
/// use warden_policy::Authorized;
///
/// fn forge(template: &Authorized) -> Authorized {
///     Authorized { ..template.clone() } // error[E0451]: the fields of `Authorized` are private
/// }
/// ```
///
/// and neither does reading one from JSON:
///
/// ```compile_fail,E0277
/// let forged: warden_policy::Authorized = serde_json::from_str("{}").unwrap();
/// ```
///
/// A value obtained from the policy works as expected:
///
/// ```
/// use warden_policy::{Policy, Root, ToolRequest, Verdict};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::create_dir_all(dir.path().join("runtime/tests"))?;
/// let root = Root::new(dir.path())?;
/// let request = ToolRequest::pytest_run("./runtime//tests", ["-x"]);
/// let Verdict::Allowed(authorized) = Policy::builtin().authorize(&root, &request) else {
///     panic!("the default policy allows pytest in runtime/tests");
/// };
/// assert_eq!(authorized.targets(), ["runtime/tests"]);
/// assert_eq!(authorized.extra_args(), ["-x"]);
/// assert_eq!(authorized.root(), root.path());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Authorized {
    root: Root,
    policy: Policy,
    kind: Kind,
    /// The target the policy allowed; reruns must stay within it.
    scope: Target,
    targets: Vec<String>,
    extra_args: Vec<String>,
    decision: Decision,
    /// The project's configuration file and its checked `addopts`.
    project: Arc<ProjectOptions>,
}

impl Authorized {
    pub(crate) fn new(
        root: Root,
        policy: Policy,
        kind: Kind,
        target: Target,
        extra_args: Vec<String>,
        decision: Decision,
        project: ProjectOptions,
    ) -> Authorized {
        Authorized {
            root,
            policy,
            kind,
            targets: vec![target.to_arg()],
            scope: target,
            extra_args,
            decision,
            project: Arc::new(project),
        }
    }

    /// The absolute, canonical root the targets are relative to.
    pub fn root(&self) -> &Utf8Path {
        self.root.path()
    }

    /// The tool that is allowed (e.g. `pytest`). Code that carries out one tool must check it:
    /// an `fs`/`write` permission is no permission to run pytest.
    pub fn tool(&self) -> &str {
        self.kind.tool()
    }

    /// The action that is allowed (e.g. `run`).
    pub fn action(&self) -> &str {
        self.kind.action()
    }

    /// Root-relative, normalised targets: one for an ordinary request, the node ids after
    /// [`Authorized::narrow`]. pytest node-id suffixes (`::name[param]`) are kept.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// Extra arguments, already checked against the allowlist.
    pub fn extra_args(&self) -> &[String] {
        &self.extra_args
    }

    /// The pytest configuration file the run reads (absolute, inside the root): the one pytest
    /// would choose if the file system ended at the root, as found when the request was
    /// decided. `None` when the root has none (the run then reads no configuration).
    pub fn config_file(&self) -> Option<&Utf8Path> {
        self.project.config_file.as_deref()
    }

    /// The items of the project's `addopts` that passed the allowlist, in order. Whoever runs
    /// pytest passes `-o addopts=` (so the file's own value is never read) and these items
    /// before the extra arguments, as pytest itself would place them: what runs is exactly
    /// what was checked.
    pub fn addopts(&self) -> &[String] {
        &self.project.kept
    }

    /// Where the project's `addopts` were read (the file and its table or section), if it has any.
    pub fn addopts_source(&self) -> Option<&str> {
        self.project.source.as_deref()
    }

    /// Items of the project's `addopts` left out, each with why: they only write files or use
    /// pytest's cache, so leaving them out changes no test. The decision's reason names them too.
    pub fn addopts_dropped(&self) -> &[(String, String)] {
        &self.project.dropped
    }

    /// The decision that allowed the request.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The limits of the policy that allowed the request.
    pub fn limits(&self) -> &Limits {
        self.policy.limits()
    }

    /// Permission to rerun just `node_ids` (for example the tests that failed, to tell a flake
    /// from a real failure), keeping the decision, limits and extra arguments.
    ///
    /// Each id is checked again exactly like a new request (syntax, normalisation, symlinks,
    /// rules) and must also lie within the originally authorised target. The first id that
    /// fails makes the whole narrowing fail, with a denial that names it.
    pub fn narrow(&self, node_ids: &[String]) -> Result<Authorized, Decision> {
        if self.kind != Kind::PytestRun {
            return Err(Decision::deny(format!(
                "only a pytest run can be narrowed to node ids, not {}",
                self.kind
            )));
        }
        if node_ids.is_empty() {
            return Err(Decision::deny("narrowing needs at least one node id"));
        }
        let mut targets: Vec<String> = Vec::with_capacity(node_ids.len());
        let mut seen: HashSet<String> = HashSet::with_capacity(node_ids.len());
        for id in node_ids {
            let request = ToolRequest::pytest_run(id.as_str(), self.extra_args.iter().cloned());
            let target = self
                .policy
                .evaluate(&self.root, &request)
                .map_err(|denied| Decision {
                    allowed: false,
                    reason: format!("rerun of `{}` denied: {}", shown(id), denied.reason),
                    matched_rules: denied.matched_rules,
                })?
                .target;
            if !target.is_within(&self.scope) {
                return Err(Decision::deny(format!(
                    "rerun of `{}` denied: it is not within the authorised target `{}`",
                    shown(id),
                    self.scope.to_arg()
                )));
            }
            let arg = target.to_arg();
            if seen.insert(arg.clone()) {
                targets.push(arg);
            }
        }
        Ok(Authorized {
            targets,
            ..self.clone()
        })
    }
}
