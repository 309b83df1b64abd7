//! The TOML policy format: parsing, validation, and the examples a file carries.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::args::{OptIn, Options};
use crate::env::reserved_env;
use crate::error::InvalidPolicy;
use crate::policy::{Effect, Example, Kind, Limits, Rule, Scope};
use crate::request::{RequestArgs, ToolRequest};
use crate::target::{parse_scope, shown};

/// The only format version there is.
const VERSION: u32 = 1;
/// Bounds that keep a policy from configuring an unbounded run.
const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;
const MAX_GRACE_SECS: u64 = 10 * 60;
const MAX_BUDGET_SECS: u64 = 7 * 24 * 60 * 60;
const MAX_OUTPUT_CAP_BYTES: u64 = 64 * 1024 * 1024;
const MAX_RETRIES: u32 = 10;

/// A policy file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u32,
    /// `"builtin"`: the built-in rules come first and this file's rules are added to them.
    extends: Option<String>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    pytest: PytestFile,
    #[serde(default)]
    sandbox: crate::sandbox::SandboxFile,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
    #[serde(default, rename = "example")]
    examples: Vec<ExampleFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    timeout_secs: Option<u64>,
    grace_secs: Option<u64>,
    budget_secs: Option<u64>,
    output_cap_bytes: Option<u64>,
    retries: Option<u32>,
    env_allow: Option<Vec<String>>,
    python: Option<String>,
}

/// The `[pytest]` table: what a policy adds to the argument allowlist.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PytestFile {
    /// Option groups the allowlist otherwise refuses, allowed by name (`"xdist"`).
    allow_options: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    effect: Effect,
    tool: String,
    action: String,
    scope: Vec<String>,
    description: Option<String>,
    /// `false` switches the rule off without deleting it (a rollback that keeps the text).
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleFile {
    name: Option<String>,
    expect: Expect,
    tool: String,
    action: String,
    target: Option<String>,
    #[serde(default)]
    extra_args: Vec<String>,
    matched_rules: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Allow,
    Deny,
}

/// A validated policy document.
pub(crate) struct Parsed {
    /// Whether the file builds on the built-in policy (`extends = "builtin"`).
    pub(crate) extends_builtin: bool,
    pub(crate) limits: Limits,
    /// The `[limits]` keys the file sets itself (the others take their defaults).
    pub(crate) limits_set: Vec<&'static str>,
    pub(crate) options: Options,
    /// Whether the file sets `[pytest] allow_options` itself.
    pub(crate) options_set: bool,
    pub(crate) rules: Vec<Rule>,
    pub(crate) examples: Vec<Example>,
}

/// Parses and validates a policy document (examples are checked by the caller, against a root).
pub(crate) fn parse(text: &str) -> Result<Parsed, InvalidPolicy> {
    let file: PolicyFile = toml::from_str(text)
        .map_err(|err| InvalidPolicy::Toml(err.to_string().trim_end().to_owned()))?;
    if file.version != VERSION {
        return Err(InvalidPolicy::UnsupportedVersion {
            found: file.version,
        });
    }
    let extends_builtin = match file.extends.as_deref() {
        None => false,
        Some(EXTENDS_BUILTIN) => true,
        Some(other) => {
            return Err(InvalidPolicy::UnknownBase {
                found: shown(other),
            });
        }
    };
    let limits_set = limits_set(&file.limits);
    let mut limits = limits(file.limits)?;
    limits.sandbox = crate::sandbox::settings(file.sandbox)?;
    let options_set = file.pytest.allow_options.is_some();
    let options = pytest_options(file.pytest)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut rules = Vec::with_capacity(file.rules.len());
    for (at, raw) in file.rules.into_iter().enumerate() {
        let index = at + 1;
        if !is_rule_id(&raw.id) {
            return Err(InvalidPolicy::BadRuleId {
                index,
                id: shown(&raw.id),
            });
        }
        if let Some(first) = seen.insert(raw.id.clone(), index) {
            return Err(InvalidPolicy::DuplicateRuleId {
                id: raw.id,
                first,
                second: index,
            });
        }
        rules.push(rule(raw)?);
    }
    let examples = file
        .examples
        .into_iter()
        .enumerate()
        .map(|(at, raw)| example(at + 1, raw))
        .collect();
    Ok(Parsed {
        extends_builtin,
        limits,
        limits_set,
        options,
        options_set,
        rules,
        examples,
    })
}

/// The one policy a file can build on.
pub(crate) const EXTENDS_BUILTIN: &str = "builtin";

/// The `[limits]` keys a file sets, in the order of the table.
fn limits_set(raw: &LimitsFile) -> Vec<&'static str> {
    let keys = [
        ("timeout_secs", raw.timeout_secs.is_some()),
        ("grace_secs", raw.grace_secs.is_some()),
        ("budget_secs", raw.budget_secs.is_some()),
        ("output_cap_bytes", raw.output_cap_bytes.is_some()),
        ("retries", raw.retries.is_some()),
        ("env_allow", raw.env_allow.is_some()),
        ("python", raw.python.is_some()),
    ];
    keys.into_iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| key)
        .collect()
}

fn pytest_options(raw: PytestFile) -> Result<Options, InvalidPolicy> {
    let mut allowed = Vec::new();
    for name in raw.allow_options.unwrap_or_default() {
        let Some(group) = OptIn::parse(&name) else {
            let known: Vec<&str> = OptIn::ALL.iter().map(|o| o.name()).collect();
            return Err(InvalidPolicy::UnknownOptionGroup {
                name: shown(&name),
                known: known.join(", "),
            });
        };
        if !allowed.contains(&group) {
            allowed.push(group);
        }
    }
    Ok(Options { allowed })
}

fn is_rule_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn rule(raw: RuleFile) -> Result<Rule, InvalidPolicy> {
    let kinds = kinds(&raw.id, &raw.tool, &raw.action)?;
    if raw.scope.is_empty() {
        return Err(InvalidPolicy::EmptyScope { rule: raw.id });
    }
    let mut scopes = Vec::with_capacity(raw.scope.len());
    for written in raw.scope {
        let components = parse_scope(&written).map_err(|problem| InvalidPolicy::BadScope {
            rule: raw.id.clone(),
            path: shown(&written),
            problem,
        })?;
        scopes.push(Scope { components });
    }
    Ok(Rule {
        id: raw.id,
        effect: raw.effect,
        kinds,
        scopes,
        description: raw.description,
        enabled: raw.enabled,
        from_builtin: false,
    })
}

/// The tool actions a rule's `tool`/`action` pair covers; `*` is a wildcard.
fn kinds(rule: &str, tool: &str, action: &str) -> Result<Vec<Kind>, InvalidPolicy> {
    if tool != "*" && !Kind::ALL.iter().any(|k| k.tool() == tool) {
        return Err(InvalidPolicy::UnknownTool {
            rule: rule.to_owned(),
            tool: shown(tool),
        });
    }
    let of_tool: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| tool == "*" || k.tool() == tool)
        .collect();
    let kinds: Vec<Kind> = of_tool
        .iter()
        .copied()
        .filter(|k| action == "*" || k.action() == action)
        .collect();
    if kinds.is_empty() {
        let known: Vec<String> = of_tool
            .iter()
            .map(|k| format!("`{}`", k.action()))
            .collect();
        return Err(InvalidPolicy::UnknownAction {
            rule: rule.to_owned(),
            tool: tool.to_owned(),
            action: shown(action),
            known: format!("{}, or `*` for any", known.join(", ")),
        });
    }
    Ok(kinds)
}

fn example(index: usize, raw: ExampleFile) -> Example {
    let target = raw
        .target
        .as_deref()
        .map(|t| format!(" target \"{}\"", shown(t)))
        .unwrap_or_default();
    let args = if raw.extra_args.is_empty() {
        String::new()
    } else {
        let shown_args: Vec<String> = raw
            .extra_args
            .iter()
            .map(|a| format!("\"{}\"", shown(a)))
            .collect();
        format!(" extra_args [{}]", shown_args.join(", "))
    };
    let name = raw
        .name
        .as_deref()
        .map(|n| format!(" \"{}\"", shown(n)))
        .unwrap_or_default();
    let label = format!(
        "#{index}{name} ({}/{}{target}{args})",
        shown(&raw.tool),
        shown(&raw.action)
    );
    Example {
        label,
        request: ToolRequest {
            tool: raw.tool,
            action: raw.action,
            args: RequestArgs {
                target: raw.target,
                extra_args: raw.extra_args,
            },
        },
        expect_allowed: matches!(raw.expect, Expect::Allow),
        matched_rules: raw.matched_rules,
    }
}

fn limits(raw: LimitsFile) -> Result<Limits, InvalidPolicy> {
    let defaults = Limits::default();
    let bad = |key: &'static str, problem: String| InvalidPolicy::BadLimit { key, problem };
    let timeout = raw.timeout_secs.unwrap_or(defaults.timeout.as_secs());
    if !(1..=MAX_TIMEOUT_SECS).contains(&timeout) {
        return Err(bad(
            "timeout_secs",
            format!("is {timeout}; it must be between 1 and {MAX_TIMEOUT_SECS} seconds"),
        ));
    }
    let grace = raw.grace_secs.unwrap_or(defaults.grace.as_secs());
    if grace > MAX_GRACE_SECS {
        return Err(bad(
            "grace_secs",
            format!("is {grace}; it must be at most {MAX_GRACE_SECS} seconds"),
        ));
    }
    let budget = raw.budget_secs.unwrap_or(defaults.budget.as_secs());
    if budget > MAX_BUDGET_SECS {
        return Err(bad(
            "budget_secs",
            format!("is {budget}; it must be at most {MAX_BUDGET_SECS} seconds"),
        ));
    }
    if budget < timeout {
        return Err(bad(
            "budget_secs",
            format!(
                "is {budget}, less than `timeout_secs` ({timeout}); the mission budget must cover at least one full run"
            ),
        ));
    }
    let cap = raw
        .output_cap_bytes
        .unwrap_or(defaults.output_cap_bytes as u64);
    if !(1..=MAX_OUTPUT_CAP_BYTES).contains(&cap) {
        return Err(bad(
            "output_cap_bytes",
            format!("is {cap}; it must be between 1 and {MAX_OUTPUT_CAP_BYTES} bytes"),
        ));
    }
    let output_cap_bytes = usize::try_from(cap).map_err(|_| {
        bad(
            "output_cap_bytes",
            format!("is {cap}, more than this platform can address"),
        )
    })?;
    let retries = raw.retries.unwrap_or(defaults.retries);
    if retries > MAX_RETRIES {
        return Err(bad(
            "retries",
            format!("is {retries}; it must be at most {MAX_RETRIES}"),
        ));
    }
    let env_allow = raw.env_allow.unwrap_or_default();
    for (at, name) in env_allow.iter().enumerate() {
        env_name(name)?;
        if env_allow[..at].contains(name) {
            return Err(InvalidPolicy::BadEnvName {
                name: name.clone(),
                problem: "is listed twice".to_owned(),
            });
        }
    }
    if let Some(python) = &raw.python
        && (python.is_empty() || python.len() > 4096 || python.chars().any(char::is_control))
    {
        return Err(bad(
            "python",
            format!(
                "`{}` is not a usable interpreter path (empty, too long, or with control characters)",
                shown(python)
            ),
        ));
    }
    Ok(Limits {
        timeout: Duration::from_secs(timeout),
        grace: Duration::from_secs(grace),
        budget: Duration::from_secs(budget),
        output_cap_bytes,
        retries,
        env_allow,
        python: raw.python,
        sandbox: crate::sandbox::SandboxSettings::default(),
    })
}

fn env_name(name: &str) -> Result<(), InvalidPolicy> {
    let problem = |problem: String| InvalidPolicy::BadEnvName {
        name: shown(name),
        problem,
    };
    let mut bytes = name.bytes();
    let plain = matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 128;
    if !plain {
        return Err(problem(
            "is not a plain variable name (ASCII letters, digits and `_`, not starting with a digit)"
                .to_owned(),
        ));
    }
    if let Some(why) = reserved_env(name) {
        return Err(problem(format!("may not be passed to tests: it {why}")));
    }
    Ok(())
}
