//! What can go wrong while setting governance up (not a denial: a denial is a [`crate::Decision`]).

use std::io;
use std::path::PathBuf;

use crate::decision::Decision;

/// Why a root could not be opened or a policy could not be loaded.
///
/// An ordinary "no" to a request is never an error; it is a denied [`crate::Decision`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The root directory does not exist or cannot be inspected.
    #[error("cannot open the root `{}`: {source}", path.display())]
    RootUnavailable {
        /// The root as given.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The root exists but is not a directory.
    #[error("the root `{}` is not a directory", path.display())]
    RootNotDirectory {
        /// The root as given.
        path: PathBuf,
    },
    /// The root's canonical path is not valid UTF-8, so targets could not be reported faithfully.
    #[error("the root `{}` has a path that is not valid UTF-8", path.display())]
    RootNotUtf8 {
        /// The root as given.
        path: PathBuf,
    },
    /// A policy file could not be read.
    #[error("cannot read the policy file `{}`: {source}", path.display())]
    Read {
        /// The policy file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// A policy file is larger than any sensible policy.
    #[error("the policy file `{}` is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The policy file.
        path: PathBuf,
        /// The size limit in bytes.
        limit: u64,
    },
    /// A policy does not parse or does not validate; nothing may run under it.
    #[error("invalid policy {origin}: {problem}")]
    Invalid {
        /// Where the policy came from: a file path, `built-in`, or `(string)`.
        origin: String,
        /// What is wrong with it.
        problem: InvalidPolicy,
    },
}

/// What is wrong with a policy document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidPolicy {
    /// The TOML does not parse, or has an unknown key, a missing key or a value of the wrong type.
    #[error("{0}")]
    Toml(String),
    /// The `version` key names a format this Warden does not know.
    #[error("unsupported `version = {found}`: this Warden reads policy format version 1")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// A rule id is empty or has characters other than ASCII letters, digits, `-`, `_`, `.`.
    #[error("rule #{index}: invalid id `{id}`: use 1 to 64 ASCII letters, digits, `-`, `_` or `.`")]
    BadRuleId {
        /// 1-based position of the rule in the file.
        index: usize,
        /// The id as written.
        id: String,
    },
    /// Two rules share an id, so decisions could not say which one decided.
    #[error("duplicate rule id `{id}` (rules #{first} and #{second})")]
    DuplicateRuleId {
        /// The id.
        id: String,
        /// 1-based position of the first rule with it.
        first: usize,
        /// 1-based position of the second rule with it.
        second: usize,
    },
    /// A rule names a tool this Warden does not know.
    #[error("rule `{rule}`: unknown tool `{tool}` (known: `pytest`, `fs`, or `*` for any)")]
    UnknownTool {
        /// The rule id.
        rule: String,
        /// The tool as written.
        tool: String,
    },
    /// A rule names an action its tool does not have.
    #[error("rule `{rule}`: tool `{tool}` has no action `{action}` (known: {known})")]
    UnknownAction {
        /// The rule id.
        rule: String,
        /// The tool.
        tool: String,
        /// The action as written.
        action: String,
        /// The actions the tool has.
        known: String,
    },
    /// A rule has `scope = []`, which would match nothing.
    #[error(
        "rule `{rule}`: `scope` is empty; list root-relative paths (`\".\"` is the whole root)"
    )]
    EmptyScope {
        /// The rule id.
        rule: String,
    },
    /// A scope path is empty, absolute, escaping or otherwise unusable.
    #[error("rule `{rule}`: scope path `{path}` {problem}")]
    BadScope {
        /// The rule id.
        rule: String,
        /// The scope path as written (escaped).
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `extends` names a policy other than `"builtin"`.
    #[error(
        "`extends = \"{found}\"`: the only policy a file can build on is the built-in one (`extends = \"builtin\"`)"
    )]
    UnknownBase {
        /// The value as written (escaped).
        found: String,
    },
    /// A rule of a file that extends the built-in policy reuses a built-in rule's id.
    #[error(
        "rule `{id}` has the id of a built-in rule; with `extends = \"builtin\"` the built-in rules stay as they are, so give this rule another id (to change a built-in rule instead, drop `extends` and copy the rules you want from `warden policy`)"
    )]
    BuiltinRuleId {
        /// The id.
        id: String,
    },
    /// `[pytest] allow_options` names a group Warden does not know, or one twice.
    #[error(
        "`pytest.allow_options`: `{name}` is not an option group Warden can allow (known: {known})"
    )]
    UnknownOptionGroup {
        /// The name as written (escaped).
        name: String,
        /// The groups there are.
        known: String,
    },
    /// A limit is out of range.
    #[error("`limits.{key}` {problem}")]
    BadLimit {
        /// The key under `[limits]`.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A `[sandbox]` key is out of range.
    #[error("`sandbox.{key}` {problem}")]
    BadSandbox {
        /// The key under `[sandbox]`.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// An `env_allow` entry is not a plain variable name or would let code or options in.
    #[error("`limits.env_allow`: `{name}` {problem}")]
    BadEnvName {
        /// The name as written (escaped).
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An example in the file does not come out as the file says it must.
    #[error(
        "example {example} must be {expected} but the policy {actual}: {reason}{rules}",
        expected = if *expected_allowed { "allowed" } else { "denied" },
        actual = if decision.allowed { "allows it" } else { "denies it" },
        reason = decision.reason,
        rules = describe_rules(&decision.matched_rules),
    )]
    ExampleFailed {
        /// Which example, e.g. `#2 "sibling" (pytest/run target "runtime/testsX")`.
        example: String,
        /// Whether the example says the request must be allowed.
        expected_allowed: bool,
        /// The decision the policy actually made.
        decision: Decision,
    },
    /// An example's expected rules differ from the rules that decided it.
    #[error(
        "example {example} must be decided by rules [{expected}] but was decided by [{actual}]"
    )]
    ExampleRulesDiffer {
        /// Which example.
        example: String,
        /// The rules the example names.
        expected: String,
        /// The rules that decided.
        actual: String,
    },
}

fn describe_rules(rules: &[String]) -> String {
    if rules.is_empty() {
        String::new()
    } else {
        format!(" (rules: {})", rules.join(", "))
    }
}
