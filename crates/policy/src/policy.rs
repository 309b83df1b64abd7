//! The policy: rules, limits and examples, and how a request is decided.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::Deserialize;

use crate::addopts::{self, ProjectOptions};
use crate::args::{self, Options};
use crate::decision::{Authorized, Decision, Verdict};
use crate::effective::{self, EffectivePolicy};
use crate::error::{InvalidPolicy, PolicyError};
use crate::file;
use crate::request::ToolRequest;
use crate::resolve::{self, MAX_WALK_DEPTH, MAX_WALK_ENTRIES, ResolveError, WalkError};
use crate::root::{Backing, Root};
use crate::target::{self, Target, shown};

/// The origin of the built-in policy.
pub(crate) const BUILTIN_ORIGIN: &str = "built-in";

/// Largest policy file read, in bytes.
const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// The limits a governed run works within. Defaults are the contract's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline of one pytest run; then the whole process tree is stopped.
    pub timeout: Duration,
    /// Time between asking the process tree to stop (SIGTERM) and killing it (SIGKILL).
    pub grace: Duration,
    /// Cumulative test time a mission may spend.
    pub budget: Duration,
    /// Bytes of each output stream kept (head and tail); the rest is counted and hashed only.
    pub output_cap_bytes: usize,
    /// Reruns of failed tests to tell flakes from real failures.
    pub retries: u32,
    /// Environment variables passed to tests in addition to Warden's own small allowlist.
    pub env_allow: Vec<String>,
    /// The Python interpreter to run pytest with; `None` means Warden's default lookup.
    pub python: Option<String>,
    /// How the tests are confined (`[sandbox]`).
    pub sandbox: crate::sandbox::SandboxSettings,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(300),
            grace: Duration::from_secs(5),
            budget: Duration::from_secs(600),
            output_cap_bytes: 51_200,
            retries: 2,
            env_allow: Vec::new(),
            python: None,
            sandbox: crate::sandbox::SandboxSettings::default(),
        }
    }
}

/// A tool action the policy understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `pytest`/`run`: run tests; the target is a pytest collection argument.
    PytestRun,
    /// `fs`/`write`: write a file; the target is a path.
    FsWrite,
}

impl Kind {
    pub(crate) const ALL: [Kind; 2] = [Kind::PytestRun, Kind::FsWrite];

    fn of(tool: &str, action: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.tool() == tool && k.action() == action)
    }

    pub(crate) fn tool(self) -> &'static str {
        match self {
            Kind::PytestRun => ToolRequest::PYTEST,
            Kind::FsWrite => ToolRequest::FS,
        }
    }

    pub(crate) fn action(self) -> &'static str {
        match self {
            Kind::PytestRun => ToolRequest::RUN,
            Kind::FsWrite => ToolRequest::WRITE,
        }
    }

    fn syntax(self) -> target::Syntax {
        match self {
            Kind::PytestRun => target::Syntax::PytestNodeId,
            Kind::FsWrite => target::Syntax::FilePath,
        }
    }

    /// A note for reasons about symlinks beneath a directory target.
    fn follows(self) -> &'static str {
        match self {
            Kind::PytestRun => "; pytest would follow it",
            Kind::FsWrite => "",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tool(), self.action())
    }
}

/// Whether a rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// One rule of a policy.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) effect: Effect,
    pub(crate) kinds: Vec<Kind>,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) description: Option<String>,
    /// A disabled rule is validated like any other but takes no part in decisions.
    pub(crate) enabled: bool,
    /// Whether the rule comes from the built-in policy (itself, or through `extends`).
    pub(crate) from_builtin: bool,
}

/// A scope path of a rule, normalised (empty components mean the whole root).
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) components: Vec<String>,
}

impl Scope {
    fn lexical(&self) -> PathBuf {
        self.components.iter().collect()
    }
}

/// An example a policy file carries: a request and the outcome it must have.
#[derive(Debug, Clone)]
pub(crate) struct Example {
    pub(crate) label: String,
    pub(crate) request: ToolRequest,
    pub(crate) expect_allowed: bool,
    pub(crate) matched_rules: Option<Vec<String>>,
}

/// A set of rules and limits, loaded from TOML or built in.
///
/// Decisions work like Cedar's: everything is denied unless an allow rule matches, and any
/// matching deny rule beats every allow rule. Before any rule is consulted, built-in checks
/// refuse what no policy may allow: unknown tools, malformed or escaping targets, and pytest
/// arguments off the allowlist.
///
/// ## Targets and scopes
///
/// A target is read relative to the root and normalised component by component (`.` and empty
/// components vanish, `a/..` cancels); a `..` that would leave the root is denied even if the
/// path comes back in later. The normalised form is what runs. It is then resolved against the
/// real file system, following symlinks (also ones that do not exist yet as files, so a write
/// is judged by where it would land), and must stay inside the root. Scope paths are resolved
/// the same way. Comparison is by whole components, never by string prefix.
///
/// - An **allow** rule matches when the normalised target lies within one of its scopes both
///   as written and as resolved, and, for a directory target, every symlink beneath it (which
///   pytest would follow) leads into one of its scopes.
/// - A **deny** rule matches when anything the target reaches overlaps one of its scopes: the
///   target as written or as resolved lies within the scope or contains it, or a symlink
///   beneath it leads into it.
/// - A rule with `enabled = false` is validated like any other but matches nothing: switching
///   off an allow rule denies its requests from the next decision on (a default deny whose
///   reason names the disabled rule); switching off a deny rule reopens what it protected.
///
/// A decision describes the file system as it was when it was made. The agent can change the
/// tree afterwards, so whoever acts on an [`Authorized`] should do so promptly;
/// [`Authorized::narrow`] checks the tree again for each rerun.
///
/// ## Examples in policy files
///
/// A file's `[[example]]` entries are requests with the outcome they must have; a file whose
/// examples do not come out that way does not load. [`Policy::load`] and
/// [`Policy::from_toml_str`] check them against an empty root (nothing exists beneath it, so
/// only the lexical rules apply); [`Policy::load_for`] and [`Policy::from_toml_str_for`] check
/// them against a real root, so examples may rely on the files and symlinks in it.
///
/// ```
/// use warden_policy::{Policy, Root, ToolRequest};
///
/// let policy = Policy::from_toml_str(r#"
///     version = 1
///
///     [[rule]]
///     id = "unit-tests"
///     effect = "allow"
///     tool = "pytest"
///     action = "run"
///     scope = ["tests/unit"]
///
///     [[example]]
///     expect = "deny"
///     tool = "pytest"
///     action = "run"
///     target = "tests/unitX"
/// "#)?;
///
/// let dir = tempfile::tempdir()?;
/// let root = Root::new(dir.path())?;
/// let decision = policy.decide(&root, &ToolRequest::pytest_run("tests/unit/test_a.py::test_x", ["-q"]));
/// assert!(decision.allowed, "{}", decision.reason);
/// assert_eq!(decision.matched_rules, ["unit-tests"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    origin: String,
    /// Whether a file builds on the built-in policy (`extends = "builtin"`).
    extends_builtin: bool,
    limits: Limits,
    /// The `[limits]` keys set by the file itself (all of them for the built-in policy).
    limits_set: Vec<&'static str>,
    options: Options,
    /// Whether the file sets `[pytest] allow_options` itself.
    options_set: bool,
    rules: Vec<Rule>,
    examples: Vec<Example>,
}

static BUILTIN: LazyLock<Policy> = LazyLock::new(|| {
    match Policy::parse(Policy::BUILTIN_TOML, BUILTIN_ORIGIN, &Root::empty()) {
        Ok(policy) => policy,
        Err(err) => {
            // Cannot happen (the tests load it), but if it did, failing closed is the answer:
            // a policy without rules denies everything.
            tracing::error!("the built-in policy is invalid, denying everything: {err}");
            Policy {
                inner: Arc::new(Inner {
                    origin: "built-in (invalid, denying everything)".to_owned(),
                    extends_builtin: false,
                    limits: Limits::default(),
                    limits_set: Vec::new(),
                    options: Options::default(),
                    options_set: false,
                    rules: Vec::new(),
                    examples: Vec::new(),
                }),
            }
        }
    }
});

/// A request that passed every check, with what was allowed.
pub(crate) struct Allowed {
    pub(crate) decision: Decision,
    pub(crate) target: Target,
    kind: Kind,
}

impl Policy {
    /// The built-in default policy as TOML: the contract's default, and an example of the format.
    pub const BUILTIN_TOML: &'static str = include_str!("default_policy.toml");

    /// The contract's default policy: pytest runs only inside `runtime/tests`; file writes
    /// anywhere in the root except the protected surfaces `docs/00_foundations` and
    /// `docs/01_governance` (and Warden's own `warden.toml` and `.warden/`), where a deny
    /// rule wins; everything else denied.
    pub fn builtin() -> Policy {
        BUILTIN.clone()
    }

    /// Parses a policy from TOML; its examples are checked against an empty root.
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        Self::parse(text, "(string)", &Root::empty())
    }

    /// Parses a policy from TOML; its examples are checked against `root`.
    pub fn from_toml_str_for(root: &Root, text: &str) -> Result<Policy, PolicyError> {
        Self::parse(text, "(string)", root)
    }

    /// Loads a policy file; its examples are checked against an empty root.
    pub fn load(path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        Self::parse(&read(path)?, &path.display().to_string(), &Root::empty())
    }

    /// Loads a policy file; its examples are checked against `root`, the root it will govern.
    pub fn load_for(root: &Root, path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        Self::parse(&read(path)?, &path.display().to_string(), root)
    }

    fn parse(text: &str, origin: &str, root: &Root) -> Result<Policy, PolicyError> {
        let invalid = |problem| PolicyError::Invalid {
            origin: origin.to_owned(),
            problem,
        };
        let parsed = file::parse(text).map_err(invalid)?;
        let builtin = origin == BUILTIN_ORIGIN;
        let mut rules = Vec::new();
        let mut options = parsed.options;
        if parsed.extends_builtin {
            let base = file::parse(Self::BUILTIN_TOML).map_err(invalid)?;
            for rule in &parsed.rules {
                if base.rules.iter().any(|b| b.id == rule.id) {
                    return Err(invalid(InvalidPolicy::BuiltinRuleId {
                        id: rule.id.clone(),
                    }));
                }
            }
            rules.extend(base.rules.into_iter().map(|rule| Rule {
                from_builtin: true,
                ..rule
            }));
            for group in base.options.allowed {
                if !options.allowed.contains(&group) {
                    options.allowed.push(group);
                }
            }
        }
        rules.extend(parsed.rules.into_iter().map(|rule| Rule {
            from_builtin: builtin,
            ..rule
        }));
        let mut limits = parsed.limits;
        // What deny rules keep from `fs`/`write` the sandbox keeps from the tests too.
        limits.sandbox.protected = rules
            .iter()
            .filter(|r| r.enabled && r.effect == Effect::Deny && r.kinds.contains(&Kind::FsWrite))
            .flat_map(|r| r.scopes.iter().map(|s| s.components.join("/")))
            .collect();
        let policy = Policy {
            inner: Arc::new(Inner {
                origin: origin.to_owned(),
                extends_builtin: parsed.extends_builtin,
                limits,
                limits_set: parsed.limits_set,
                options,
                options_set: parsed.options_set,
                rules,
                examples: parsed.examples,
            }),
        };
        policy.check_examples(root).map_err(invalid)?;
        Ok(policy)
    }

    fn check_examples(&self, root: &Root) -> Result<(), InvalidPolicy> {
        for example in &self.inner.examples {
            // Examples pin the rules; the project's `addopts` are judged at each decision, so
            // an edit of the project's ini file cannot make the policy itself fail to load.
            let decision = match self.evaluate(root, &example.request) {
                Ok(allowed) => allowed.decision,
                Err(denied) => denied,
            };
            if decision.allowed != example.expect_allowed {
                return Err(InvalidPolicy::ExampleFailed {
                    example: example.label.clone(),
                    expected_allowed: example.expect_allowed,
                    decision,
                });
            }
            if let Some(expected) = &example.matched_rules {
                let mut want = expected.clone();
                let mut got = decision.matched_rules.clone();
                want.sort();
                got.sort();
                if want != got {
                    return Err(InvalidPolicy::ExampleRulesDiffer {
                        example: example.label.clone(),
                        expected: expected.join(", "),
                        actual: decision.matched_rules.join(", "),
                    });
                }
            }
        }
        Ok(())
    }

    /// Where the policy came from: `built-in`, `(string)`, or the file path.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The limits runs work within.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The policy in force with where each setting and rule came from (the built-in policy or
    /// the file): what `warden policy` prints, as commented TOML
    /// ([`EffectivePolicy::to_toml`]) or JSON (its `Serialize`).
    ///
    /// ```
    /// use warden_policy::Policy;
    ///
    /// let policy = Policy::from_toml_str(r#"
    ///     version = 1
    ///     extends = "builtin"
    ///     [limits]
    ///     timeout_secs = 60
    ///     [[rule]]
    ///     id = "tests"
    ///     effect = "allow"
    ///     tool = "pytest"
    ///     action = "run"
    ///     scope = ["tests"]
    /// "#)?;
    /// let effective = policy.effective();
    /// assert_eq!(effective.extends.as_deref(), Some("builtin"));
    /// let tests = effective.rules.iter().find(|r| r.id == "tests").unwrap();
    /// assert_eq!(tests.from, "(string)");
    /// let builtin = effective.rules.iter().find(|r| r.id == "pytest-runtime-tests").unwrap();
    /// assert_eq!(builtin.from, "built-in");
    /// let timeout = effective.limits.iter().find(|s| s.key == "timeout_secs").unwrap();
    /// assert_eq!((timeout.value.as_u64(), timeout.from.as_str()), (Some(60), "(string)"));
    /// // The TOML form is a policy file itself, with the same rules.
    /// let again = Policy::from_toml_str(&effective.to_toml())?;
    /// assert_eq!(again.effective().rules.len(), effective.rules.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn effective(&self) -> EffectivePolicy {
        let inner = &self.inner;
        effective::build(&effective::Parts {
            origin: &inner.origin,
            extends_builtin: inner.extends_builtin,
            limits: &inner.limits,
            limits_set: &inner.limits_set,
            options: &inner.options,
            options_set: inner.options_set,
            rules: &inner.rules,
            examples: inner.examples.len(),
        })
    }

    /// Decides `request` against the files under `root`.
    ///
    /// For a pytest run this includes the project's `addopts` (from the configuration file
    /// pytest would read): an item the allowlist refuses denies the request, naming the file
    /// and the item.
    pub fn decide(&self, root: &Root, request: &ToolRequest) -> Decision {
        match self.evaluate_with_project(root, request) {
            Ok((allowed, _)) => allowed.decision,
            Err(denied) => denied,
        }
    }

    /// Decides `request` and, if it is allowed, hands out the permission to carry it out.
    pub fn authorize(&self, root: &Root, request: &ToolRequest) -> Verdict {
        match self.evaluate_with_project(root, request) {
            Ok((allowed, project)) => Verdict::Allowed(Authorized::new(
                root.clone(),
                self.clone(),
                allowed.kind,
                allowed.target,
                request.args.extra_args.clone(),
                allowed.decision,
                project,
            )),
            Err(denied) => Verdict::Denied(denied),
        }
    }

    /// [`Policy::evaluate`], then for an allowed pytest run the project's configuration and its
    /// `addopts`, judged by the same allowlist as the agent's arguments.
    fn evaluate_with_project(
        &self,
        root: &Root,
        request: &ToolRequest,
    ) -> Result<(Allowed, ProjectOptions), Decision> {
        let mut allowed = self.evaluate(root, request)?;
        if allowed.kind != Kind::PytestRun || root.backing() == Backing::Empty {
            return Ok((allowed, ProjectOptions::default()));
        }
        let targets = [allowed.target.to_arg()];
        let project =
            addopts::inspect(root.path(), &targets, &self.inner.options).map_err(Decision::deny)?;
        if let Some(source) = &project.source {
            let mut note = format!(
                "; the project's `addopts` in {source}: {} kept",
                match project.kept.len() {
                    1 => "1 argument".to_owned(),
                    n => format!("{n} arguments"),
                }
            );
            for (item, why) in &project.dropped {
                note.push_str(&format!("; `{}` left out: {why}", shown(item)));
            }
            allowed.decision.reason.push_str(&note);
        }
        Ok((allowed, project))
    }

    /// The whole decision procedure: built-in checks, then deny rules, then allow rules.
    pub(crate) fn evaluate(&self, root: &Root, request: &ToolRequest) -> Result<Allowed, Decision> {
        let (tool, action) = (request.tool.as_str(), request.action.as_str());
        let Some(kind) = Kind::of(tool, action) else {
            return Err(Decision::deny(format!(
                "no rule allows `{}`/`{}`: it is not a tool action Warden knows (known: pytest/run, fs/write), so it is denied by default; no policy key allows it",
                shown(tool),
                shown(action)
            )));
        };
        let extra_args = &request.args.extra_args;
        match kind {
            Kind::PytestRun => {
                args::check(extra_args, &self.inner.options).map_err(Decision::deny)?;
            }
            Kind::FsWrite if !extra_args.is_empty() => {
                return Err(Decision::deny(format!(
                    "{kind} takes no extra arguments, but {} were given",
                    extra_args.len()
                )));
            }
            Kind::FsWrite => {}
        }
        let Some(raw) = request.args.target.as_deref() else {
            return Err(Decision::deny(format!(
                "{kind} needs a target: a path relative to the root{}",
                if kind == Kind::PytestRun {
                    " or a node id"
                } else {
                    ""
                }
            )));
        };
        let target = target::parse(raw, kind.syntax()).map_err(|why| {
            Decision::deny(format!(
                "target `{}` {why}; no policy key allows such a target",
                shown(raw)
            ))
        })?;
        let rules: Vec<RuleView<'_>> = self
            .inner
            .rules
            .iter()
            .filter(|rule| rule.enabled && rule.kinds.contains(&kind))
            .map(|rule| RuleView::new(rule, root))
            .collect();
        let mut place = Place::find(root, &target)?;
        // Only a target some allow rule covers needs its symlinks walked: anything else is
        // denied whatever lies beneath it, and walking it would only blur the reason.
        if rules
            .iter()
            .any(|v| v.rule.effect == Effect::Allow && v.covering_scope(&place).is_some())
        {
            place.walk(root, kind, &rules)?;
        }
        let shown_target = target.to_arg();

        let denials: Vec<(&RuleView<'_>, String)> = rules
            .iter()
            .filter(|view| view.rule.effect == Effect::Deny)
            .filter_map(|view| view.overlap(&place, root).map(|why| (view, why)))
            .collect();
        if let Some((first, why)) = denials.first() {
            let ids: Vec<String> = denials.iter().map(|(v, _)| v.rule.id.clone()).collect();
            return Err(Decision {
                allowed: false,
                reason: format!(
                    "denied by {} (a deny rule wins over any allow): {why}{}; {}",
                    name_rules(&ids),
                    describe(first.rule),
                    self.deny_rule_hint(first.rule)
                ),
                matched_rules: ids,
            });
        }

        let allows: Vec<(&RuleView<'_>, &ResolvedScope)> = rules
            .iter()
            .filter(|view| view.rule.effect == Effect::Allow)
            .filter_map(|view| view.covers(&place).map(|scope| (view, scope)))
            .collect();
        if let Some((first, scope)) = allows.first() {
            let ids: Vec<String> = allows.iter().map(|(v, _)| v.rule.id.clone()).collect();
            return Ok(Allowed {
                decision: Decision {
                    allowed: true,
                    reason: format!(
                        "allowed by {}: `{shown_target}` is inside `{}`{}",
                        name_rules(&ids),
                        scope.written(),
                        describe(first.rule)
                    ),
                    matched_rules: ids,
                },
                target,
                kind,
            });
        }
        let disabled = self.disabled_allows(root, kind, &place);
        let hint = if disabled.is_empty() {
            self.allow_hint(kind, &place)
        } else {
            String::new()
        };
        Err(Decision::deny(format!(
            "no rule allows {kind} on `{shown_target}`: {} (default deny){disabled}{hint}",
            explain_no_allow(&rules, &place, root, kind),
        )))
    }

    /// For a default deny: the policy text that would allow the request.
    fn allow_hint(&self, kind: Kind, place: &Place) -> String {
        let scope = place.lexical.components().next().map_or_else(
            || ".".to_owned(),
            |c| c.as_os_str().to_string_lossy().into_owned(),
        );
        let rule = format!(
            "`[[rule]]` with `effect = \"allow\"`, `tool = \"{}\"`, `action = \"{}\"`, `scope = [\"{}\"]`",
            kind.tool(),
            kind.action(),
            shown(&scope)
        );
        if self.origin() == BUILTIN_ORIGIN {
            let init = if kind == Kind::PytestRun {
                " (`warden init` writes one from the project's test paths)"
            } else {
                ""
            };
            format!(
                "; to allow it, add a {rule} to a `warden.toml` in the root with `extends = \"builtin\"`{init}"
            )
        } else {
            format!("; to allow it, add a {rule} to `{}`", self.origin())
        }
    }

    /// For a denial by a deny rule: where the rule comes from and how it would stop denying.
    fn deny_rule_hint(&self, rule: &Rule) -> String {
        if rule.from_builtin {
            "it is a built-in rule: a policy file without `extends = \"builtin\"` replaces the built-in rules".to_owned()
        } else {
            format!(
                "to allow it, remove the rule from `{}` or set `enabled = false` on it",
                self.origin()
            )
        }
    }

    /// For a default deny: the disabled allow rules that would have covered the target, so an
    /// operator who switched a rule off sees why its requests are now refused.
    fn disabled_allows(&self, root: &Root, kind: Kind, place: &Place) -> String {
        let ids: Vec<String> = self
            .inner
            .rules
            .iter()
            .filter(|rule| !rule.enabled && rule.effect == Effect::Allow)
            .filter(|rule| rule.kinds.contains(&kind))
            .filter(|rule| RuleView::new(rule, root).covering_scope(place).is_some())
            .map(|rule| rule.id.clone())
            .collect();
        match ids.len() {
            0 => String::new(),
            1 => format!(
                "; {} would allow it but is disabled (`enabled = false`); set `enabled = true` on it in `{}` to allow it",
                name_rules(&ids),
                self.origin()
            ),
            _ => format!(
                "; {} would allow it but are disabled (`enabled = false`); set `enabled = true` on one of them in `{}` to allow it",
                name_rules(&ids),
                self.origin()
            ),
        }
    }
}

/// Reads a policy file, bounded in size.
fn read(path: &Path) -> Result<String, PolicyError> {
    // Without waiting: `warden.toml` lives in the root, where a test can leave a FIFO.
    let file = warden_rootfs::open_read(path, true).map_err(|e| PolicyError::Read {
        path: path.to_path_buf(),
        source: match e {
            warden_rootfs::Error::Io { source, .. } => source,
            warden_rootfs::Error::NotFound { .. } => std::io::ErrorKind::NotFound.into(),
            refused => std::io::Error::other(refused.to_string()),
        },
    })?;
    let mut text = String::new();
    file.take(MAX_POLICY_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if text.len() as u64 > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_POLICY_BYTES,
        });
    }
    Ok(text)
}

fn name_rules(ids: &[String]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
    match quoted.len() {
        1 => format!("rule {}", quoted[0]),
        _ => format!("rules {}", quoted.join(", ")),
    }
}

fn describe(rule: &Rule) -> String {
    rule.description
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

/// Shows a root-relative path (`.` for the root).
fn rel_shown(rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        rel.display().to_string()
    }
}

/// Shows an absolute path relative to the root when it is inside, else as it is.
fn abs_shown(root: &Root, abs: &Path) -> String {
    match abs.strip_prefix(root.path()) {
        Ok(rel) => rel_shown(rel),
        Err(_) => abs.display().to_string(),
    }
}

/// Whether two root-relative paths overlap: one lies within the other (component-wise).
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// A scope as written and as resolved against the root.
#[derive(Debug)]
struct ResolvedScope {
    lexical: PathBuf,
    /// Root-relative; `None` when the scope resolves outside the root or cannot be resolved
    /// (then it allows nothing).
    resolved: Option<PathBuf>,
}

impl ResolvedScope {
    fn written(&self) -> String {
        rel_shown(&self.lexical)
    }
}

/// A rule with its scopes resolved for one decision.
struct RuleView<'a> {
    rule: &'a Rule,
    scopes: Vec<ResolvedScope>,
}

impl<'a> RuleView<'a> {
    fn new(rule: &'a Rule, root: &Root) -> RuleView<'a> {
        let scopes = rule
            .scopes
            .iter()
            .map(|scope| {
                let lexical = scope.lexical();
                let resolved = match root.backing() {
                    Backing::Empty => Some(lexical.clone()),
                    Backing::Filesystem => {
                        resolve::resolve(root.path().as_std_path(), &scope.components)
                            .ok()
                            .and_then(|r| {
                                r.path.strip_prefix(root.path()).ok().map(Path::to_path_buf)
                            })
                    }
                };
                if resolved.is_none() {
                    tracing::warn!(
                        rule = %rule.id,
                        scope = %rel_shown(&lexical),
                        "scope resolves outside the root or cannot be resolved; it allows nothing"
                    );
                }
                ResolvedScope { lexical, resolved }
            })
            .collect();
        RuleView { rule, scopes }
    }

    /// For a deny rule: why the target touches one of its scopes, if it does.
    fn overlap(&self, place: &Place, root: &Root) -> Option<String> {
        let target = rel_shown(&place.lexical);
        for scope in &self.scopes {
            let written = scope.written();
            if place.lexical.starts_with(&scope.lexical) {
                return Some(format!("`{target}` is inside protected scope `{written}`"));
            }
            if scope.lexical.starts_with(&place.lexical) {
                return Some(format!("`{target}` contains protected scope `{written}`"));
            }
            let Some(resolved) = &scope.resolved else {
                continue;
            };
            if overlaps(&place.resolved, resolved) {
                return Some(format!(
                    "`{target}` resolves to `{}`, which overlaps protected scope `{written}`",
                    rel_shown(&place.resolved)
                ));
            }
            if let Some((link, to)) = place.beneath.iter().find(|(_, to)| overlaps(to, resolved)) {
                return Some(format!(
                    "`{}` beneath `{target}` is a symlink to `{}`, which overlaps protected scope `{written}`",
                    abs_shown(root, link),
                    rel_shown(to)
                ));
            }
        }
        None
    }

    /// For an allow rule: the scope that covers everything the target reaches, if one does.
    fn covers(&self, place: &Place) -> Option<&ResolvedScope> {
        let links_inside = place.beneath.iter().all(|(_, to)| self.reaches(to));
        if !links_inside {
            return None;
        }
        self.covering_scope(place)
    }

    /// The scope that holds the target itself, as written and as resolved (links beneath aside).
    fn covering_scope(&self, place: &Place) -> Option<&ResolvedScope> {
        self.scopes.iter().find(|scope| {
            place.lexical.starts_with(&scope.lexical)
                && scope
                    .resolved
                    .as_ref()
                    .is_some_and(|r| place.resolved.starts_with(r))
        })
    }

    /// Whether a resolved root-relative path lies within one of the rule's scopes.
    fn reaches(&self, rel: &Path) -> bool {
        self.scopes
            .iter()
            .any(|s| s.resolved.as_ref().is_some_and(|r| rel.starts_with(r)))
    }
}

/// Why no allow rule matched, as precisely as possible.
fn explain_no_allow(rules: &[RuleView<'_>], place: &Place, root: &Root, kind: Kind) -> String {
    let target = rel_shown(&place.lexical);
    let allows: Vec<&RuleView<'_>> = rules
        .iter()
        .filter(|v| v.rule.effect == Effect::Allow)
        .collect();
    if allows.is_empty() {
        return format!("the policy has no allow rule for {kind}");
    }
    for view in &allows {
        let id = &view.rule.id;
        for scope in &view.scopes {
            if !place.lexical.starts_with(&scope.lexical) {
                continue;
            }
            let written = scope.written();
            let Some(resolved) = &scope.resolved else {
                return format!(
                    "scope `{written}` of rule `{id}` resolves outside the root, so it allows nothing"
                );
            };
            if !place.resolved.starts_with(resolved) {
                let via = place
                    .via
                    .first()
                    .map(|link| format!(" through symlink `{}`", abs_shown(root, link)))
                    .unwrap_or_default();
                return format!(
                    "`{target}` resolves{via} to `{}`, outside scope `{written}` of rule `{id}`",
                    rel_shown(&place.resolved)
                );
            }
            if let Some((link, to)) = place.beneath.iter().find(|(_, to)| !view.reaches(to)) {
                return format!(
                    "`{}` beneath `{target}` is a symlink to `{}`, outside scope `{written}` of rule `{id}`{}",
                    abs_shown(root, link),
                    rel_shown(to),
                    kind.follows()
                );
            }
        }
    }
    let scopes: Vec<String> = allows
        .iter()
        .flat_map(|v| v.scopes.iter().map(|s| format!("`{}`", s.written())))
        .collect();
    format!(
        "`{target}` is outside every scope that allows {kind} ({})",
        scopes.join(", ")
    )
}

/// Where a target is: as written, as resolved, and what symlinks beneath it lead to.
struct Place {
    /// Normalised root-relative path as written.
    lexical: PathBuf,
    /// Root-relative path with symlinks resolved.
    resolved: PathBuf,
    /// Symlinks passed through while resolving (absolute).
    via: Vec<PathBuf>,
    /// For a directory target: each symlink beneath it (absolute) and where it leads
    /// (root-relative; all inside the root, or the target was denied).
    beneath: Vec<(PathBuf, PathBuf)>,
}

impl Place {
    fn find(root: &Root, target: &Target) -> Result<Place, Decision> {
        let lexical = target.rel_path();
        let shown_target = target.to_arg();
        if root.backing() == Backing::Empty {
            return Ok(Place {
                resolved: lexical.clone(),
                lexical,
                via: Vec::new(),
                beneath: Vec::new(),
            });
        }
        let root_path = root.path().as_std_path();
        let resolved = resolve::resolve(root_path, &target.components).map_err(|err| {
            Decision::deny(format!(
                "target `{shown_target}` {}",
                resolve_problem(root, &err)
            ))
        })?;
        let Ok(rel) = resolved.path.strip_prefix(root_path) else {
            let via = resolved
                .links
                .first()
                .map(|link| format!(" through symlink `{}`", abs_shown(root, link)))
                .unwrap_or_default();
            return Err(Decision::deny(format!(
                "target `{shown_target}` resolves{via} to `{}`, outside the root",
                resolved.path.display()
            )));
        };
        let rel = rel.to_path_buf();
        Ok(Place {
            lexical,
            resolved: rel,
            via: resolved.links,
            beneath: Vec::new(),
        })
    }

    /// For a directory target, finds every symlink beneath it (which pytest would follow) and
    /// where it leads; a link out of the root denies the request outright.
    fn walk(&mut self, root: &Root, kind: Kind, rules: &[RuleView<'_>]) -> Result<(), Decision> {
        if root.backing() == Backing::Empty {
            return Ok(());
        }
        let root_path = root.path().as_std_path();
        let dir = root_path.join(&self.resolved);
        if !std::fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Ok(());
        }
        let shown_target = rel_shown(&self.lexical);
        // Linked directories are worth walking only where an allow rule could still reach.
        let descend = |dir: &Path| {
            dir.strip_prefix(root_path).is_ok_and(|rel| {
                rules
                    .iter()
                    .filter(|v| v.rule.effect == Effect::Allow)
                    .any(|v| v.reaches(rel))
            })
        };
        let links = resolve::walk(&dir, &descend)
            .map_err(|err| Decision::deny(walk_problem(root, &shown_target, &err)))?;
        for link in links {
            match link.target.strip_prefix(root_path) {
                Ok(to) => self.beneath.push((link.link, to.to_path_buf())),
                Err(_) => {
                    return Err(Decision::deny(format!(
                        "`{}` beneath target `{shown_target}` is a symlink to `{}`, outside the root{}",
                        abs_shown(root, &link.link),
                        link.target.display(),
                        kind.follows()
                    )));
                }
            }
        }
        Ok(())
    }
}

fn resolve_problem(root: &Root, err: &ResolveError) -> String {
    match err {
        ResolveError::Loop { link } => format!(
            "cannot be resolved: too many symlinks at `{}` (a symlink loop?)",
            abs_shown(root, link)
        ),
        ResolveError::Prefix { link } => format!(
            "cannot be resolved: symlink `{}` points to a Windows-style path",
            abs_shown(root, link)
        ),
        ResolveError::Io { path, source } => {
            format!("cannot be checked: `{}`: {source}", abs_shown(root, path))
        }
    }
}

fn walk_problem(root: &Root, target: &str, err: &WalkError) -> String {
    match err {
        WalkError::TooManyEntries => format!(
            "target `{target}` has more than {MAX_WALK_ENTRIES} entries beneath it; Warden checks every symlink beneath a directory target and fails closed beyond that bound"
        ),
        WalkError::TooDeep { path } => format!(
            "target `{target}` nests deeper than {MAX_WALK_DEPTH} directories (at `{}`); Warden fails closed beyond that bound",
            abs_shown(root, path)
        ),
        WalkError::Link { link, error } => format!(
            "`{}` beneath target `{target}` {}",
            abs_shown(root, link),
            resolve_problem(root, error)
        ),
        WalkError::Io { path, source } => format!(
            "cannot read `{}` beneath target `{target}`: {source}",
            abs_shown(root, path)
        ),
    }
}
