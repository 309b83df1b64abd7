//! The effective policy, for people and agents: every limit and rule in force, each with where
//! it came from (the built-in policy or the file), as commented TOML or as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::args::Options;
use crate::policy::{BUILTIN_ORIGIN, Effect, Kind, Limits, Rule};
use crate::sandbox::{SandboxMode, SandboxNetwork, SandboxSettings};

/// The policy in force, as `warden policy` prints it: what [`crate::Policy::effective`] returns.
///
/// Serialised to JSON it is the machine-readable form (`schema_version` 1); [`EffectivePolicy::to_toml`]
/// is the form for people, itself a loadable policy file with the same rules and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectivePolicy {
    /// Always 1.
    pub schema_version: u32,
    /// Where the policy came from: `built-in` or the file's path.
    pub origin: String,
    /// `Some("builtin")` when the file builds on the built-in policy.
    pub extends: Option<String>,
    /// Every limit, with its value and where it came from.
    pub limits: Vec<Setting>,
    /// The `[pytest]` settings, with where each came from.
    pub pytest: Vec<Setting>,
    /// The `[sandbox]` settings, with where each came from (a value other than the default
    /// comes from the file).
    pub sandbox: Vec<Setting>,
    /// Every rule, in the order they are listed, with where each came from.
    pub rules: Vec<EffectiveRule>,
    /// How many `[[example]]`s the file carries (all of them held when it loaded).
    pub examples: usize,
}

/// One setting of an [`EffectivePolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The key, e.g. `timeout_secs`.
    pub key: String,
    /// The value in force; `null` for an unset `python`.
    pub value: serde_json::Value,
    /// Where it came from: `built-in` (the default) or the policy file's path.
    pub from: String,
}

/// One rule of an [`EffectivePolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveRule {
    /// The rule's id.
    pub id: String,
    /// `allow` or `deny`.
    pub effect: String,
    /// `pytest`, `fs`, or `*`.
    pub tool: String,
    /// `run`, `write`, or `*`.
    pub action: String,
    /// Root-relative scope paths, normalised.
    pub scope: Vec<String>,
    /// The rule's description, if it has one.
    pub description: Option<String>,
    /// Whether the rule takes part in decisions.
    pub enabled: bool,
    /// Where it came from: `built-in` or the policy file's path.
    pub from: String,
}

pub(crate) struct Parts<'a> {
    pub(crate) origin: &'a str,
    pub(crate) extends_builtin: bool,
    pub(crate) limits: &'a Limits,
    pub(crate) limits_set: &'a [&'static str],
    pub(crate) options: &'a Options,
    pub(crate) options_set: bool,
    pub(crate) rules: &'a [Rule],
    pub(crate) examples: usize,
}

pub(crate) fn build(parts: &Parts<'_>) -> EffectivePolicy {
    let from_file = |set: bool| {
        if set && parts.origin != BUILTIN_ORIGIN {
            parts.origin.to_owned()
        } else {
            BUILTIN_ORIGIN.to_owned()
        }
    };
    let limits = parts.limits;
    let values: [(&str, serde_json::Value); 7] = [
        ("timeout_secs", limits.timeout.as_secs().into()),
        ("grace_secs", limits.grace.as_secs().into()),
        ("budget_secs", limits.budget.as_secs().into()),
        ("output_cap_bytes", limits.output_cap_bytes.into()),
        ("retries", limits.retries.into()),
        ("env_allow", limits.env_allow.clone().into()),
        (
            "python",
            limits
                .python
                .clone()
                .map_or(serde_json::Value::Null, Into::into),
        ),
    ];
    let limits = values
        .into_iter()
        .map(|(key, value)| Setting {
            key: key.to_owned(),
            value,
            from: from_file(parts.limits_set.contains(&key)),
        })
        .collect();
    let allowed: Vec<String> = parts
        .options
        .allowed
        .iter()
        .map(|o| o.name().to_owned())
        .collect();
    let pytest = vec![Setting {
        key: "allow_options".to_owned(),
        value: allowed.into(),
        from: from_file(parts.options_set),
    }];
    let sandbox = sandbox_settings(&parts.limits.sandbox, &from_file);
    let rules = parts
        .rules
        .iter()
        .map(|rule| {
            let (tool, action) = match rule.kinds.as_slice() {
                [kind] => (kind.tool(), kind.action()),
                kinds if kinds.len() == Kind::ALL.len() => ("*", "*"),
                // Not produced by the parser (every tool has one action), kept total anyway.
                _ => ("*", "*"),
            };
            EffectiveRule {
                id: rule.id.clone(),
                effect: match rule.effect {
                    Effect::Allow => "allow",
                    Effect::Deny => "deny",
                }
                .to_owned(),
                tool: tool.to_owned(),
                action: action.to_owned(),
                scope: rule
                    .scopes
                    .iter()
                    .map(|s| {
                        if s.components.is_empty() {
                            ".".to_owned()
                        } else {
                            s.components.join("/")
                        }
                    })
                    .collect(),
                description: rule.description.clone(),
                enabled: rule.enabled,
                from: if rule.from_builtin {
                    BUILTIN_ORIGIN.to_owned()
                } else {
                    parts.origin.to_owned()
                },
            }
        })
        .collect();
    EffectivePolicy {
        schema_version: 1,
        origin: parts.origin.to_owned(),
        extends: parts.extends_builtin.then(|| "builtin".to_owned()),
        limits,
        pytest,
        sandbox,
        rules,
        examples: parts.examples,
    }
}

/// The `[sandbox]` keys as a file writes them; a value other than the default is the file's.
fn sandbox_settings(
    settings: &SandboxSettings,
    from_file: &dyn Fn(bool) -> String,
) -> Vec<Setting> {
    const MIB: u64 = 1024 * 1024;
    let mode = |m: SandboxMode| match m {
        SandboxMode::Required => "required",
        SandboxMode::BestEffort => "best-effort",
        SandboxMode::Off => "off",
    };
    let network = |n: SandboxNetwork| match n {
        SandboxNetwork::None => "none",
        SandboxNetwork::Loopback => "loopback",
        SandboxNetwork::Host => "host",
    };
    let values = |s: &SandboxSettings| -> [(&'static str, serde_json::Value); 7] {
        [
            ("mode", mode(s.mode).into()),
            ("network", network(s.network).into()),
            ("read", s.read.clone().into()),
            ("write", s.write.clone().into()),
            ("memory_mb", s.memory_bytes.map_or(0, |b| b / MIB).into()),
            ("processes", s.processes.unwrap_or(0).into()),
            (
                "file_size_mb",
                s.file_size_bytes.map_or(0, |b| b / MIB).into(),
            ),
        ]
    };
    let defaults = values(&SandboxSettings::default());
    values(settings)
        .into_iter()
        .zip(defaults)
        .map(|((key, value), (_, default))| Setting {
            key: key.to_owned(),
            from: from_file(value != default),
            value,
        })
        .collect()
}

/// A TOML value's text (strings quoted and escaped as TOML wants them).
fn toml_text(value: &serde_json::Value) -> String {
    fn convert(value: &serde_json::Value) -> Option<toml::Value> {
        Some(match value {
            serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
            serde_json::Value::Number(n) => toml::Value::Integer(n.as_i64()?),
            serde_json::Value::String(s) => toml::Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                toml::Value::Array(items.iter().filter_map(convert).collect())
            }
            serde_json::Value::Null | serde_json::Value::Object(_) => return None,
        })
    }
    convert(value).map_or_else(String::new, |v| v.to_string())
}

impl EffectivePolicy {
    /// The policy as commented TOML: each value and rule says where it came from. The text is
    /// itself a policy file with the same limits and rules (without the examples, and with the
    /// built-in rules written out instead of `extends`).
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let base = match &self.extends {
            Some(_) => " (built on the built-in policy: `extends = \"builtin\"`)",
            None => "",
        };
        let _ = writeln!(
            out,
            "# The effective Warden policy, from {}{base}.",
            self.origin
        );
        let _ = writeln!(
            out,
            "# Each setting and rule says where it came from: `built-in`, or the policy file."
        );
        if self.examples > 0 {
            let _ = writeln!(
                out,
                "# The file's {} example(s) held when it loaded; they are not repeated here.",
                self.examples
            );
        }
        out.push_str("\nversion = 1\n\n[limits]\n");
        for setting in &self.limits {
            if setting.value.is_null() {
                let _ = writeln!(
                    out,
                    "# {} is unset: Warden looks for the interpreter itself  # from: {}",
                    setting.key, setting.from
                );
            } else {
                let _ = writeln!(
                    out,
                    "{} = {}  # from: {}",
                    setting.key,
                    toml_text(&setting.value),
                    setting.from
                );
            }
        }
        out.push_str("\n[sandbox]\n");
        for setting in &self.sandbox {
            let _ = writeln!(
                out,
                "{} = {}  # from: {}",
                setting.key,
                toml_text(&setting.value),
                setting.from
            );
        }
        out.push_str("\n[pytest]\n");
        for setting in &self.pytest {
            let _ = writeln!(
                out,
                "{} = {}  # from: {}",
                setting.key,
                toml_text(&setting.value),
                setting.from
            );
        }
        for rule in &self.rules {
            let _ = writeln!(out, "\n# from: {}", rule.from);
            out.push_str("[[rule]]\n");
            let text = |s: &str| toml::Value::String(s.to_owned()).to_string();
            let _ = writeln!(out, "id = {}", text(&rule.id));
            let _ = writeln!(out, "effect = {}", text(&rule.effect));
            let _ = writeln!(out, "tool = {}", text(&rule.tool));
            let _ = writeln!(out, "action = {}", text(&rule.action));
            let scope: Vec<String> = rule.scope.iter().map(|s| text(s)).collect();
            let _ = writeln!(out, "scope = [{}]", scope.join(", "));
            if let Some(description) = &rule.description {
                let _ = writeln!(out, "description = {}", text(description));
            }
            if !rule.enabled {
                out.push_str("enabled = false\n");
            }
        }
        out
    }
}
