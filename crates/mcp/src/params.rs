//! The tools' arguments, as Rust types: their JSON Schemas (what `tools/list` shows an agent)
//! are generated from these definitions, so the schema and the parser cannot disagree.

use schemars::JsonSchema;
use serde::Deserialize;

/// Arguments of `verify`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyParams {
    /// What to test, relative to the project root: a directory or file of tests
    /// (`runtime/tests`, `runtime/tests/test_api.py`) or one pytest node id
    /// (`runtime/tests/test_api.py::test_login[admin]`). The policy decides which targets are
    /// in scope; call `policy` to see them.
    pub target: String,
    /// Extra pytest arguments, each checked against the policy's allowlist (for example
    /// `-x`, `-k login`, `--maxfail=2`). Options that would change where pytest reads its
    /// configuration or writes files are refused.
    #[serde(default)]
    pub pytest_args: Vec<String>,
    /// Deadline of each pytest run in seconds; it can only shorten the policy's timeout. When
    /// it passes, the whole process tree is killed and the result is `timeout`.
    #[schemars(range(min = MIN_TIMEOUT_SECS))]
    pub timeout_secs: Option<f64>,
    /// Reruns of failed tests to tell flakes from real failures; it can only lower the
    /// policy's `retries`.
    pub retries: Option<u32>,
    /// A mission id: every `verify` with the same id shares the policy's test-time budget,
    /// counted from the project's ledger.
    pub mission: Option<String>,
}

impl VerifyParams {
    /// What the schema says and the parser does not check: a timeout is a positive, finite
    /// number of seconds.
    pub fn validate(&self) -> Result<(), String> {
        match self.timeout_secs {
            Some(secs) if !(secs.is_finite() && secs >= MIN_TIMEOUT_SECS) => Err(format!(
                "timeout_secs must be a number of seconds of at least {MIN_TIMEOUT_SECS}, not {secs}"
            )),
            _ => Ok(()),
        }
    }
}

/// The shortest `timeout_secs` the schema allows.
pub const MIN_TIMEOUT_SECS: f64 = 0.001;

/// Arguments of `check`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckParams {
    /// The target the request would name: for pytest a path or node id relative to the
    /// project root, for `fs` a path.
    pub target: Option<String>,
    /// Extra arguments the request would pass (pytest options).
    #[serde(default)]
    pub args: Vec<String>,
    /// The tool, `pytest` unless given (`fs` asks about file writes).
    pub tool: Option<String>,
    /// The action, `run` unless given (`write` for `fs`).
    pub action: Option<String>,
}

/// Arguments of `classify`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyParams {
    /// The ledger record (`seq`, from 1) to classify again; the latest when not given.
    #[schemars(range(min = 1))]
    pub seq: Option<u64>,
}

impl ClassifyParams {
    /// What the schema says and the parser does not check: records count from 1.
    pub fn validate(&self) -> Result<(), String> {
        match self.seq {
            Some(0) => Err("seq counts from 1: the first record is seq 1".to_owned()),
            _ => Ok(()),
        }
    }
}

/// Tools that take no arguments (`policy`, `ledger_stats`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}
