//! The request an agent makes: which tool, which action, on what.

use serde::{Deserialize, Serialize};

/// One tool request, exactly as the contract's JSON request form spells it:
/// `{"tool": "pytest", "action": "run", "args": {"target": "runtime/tests", "extra_args": ["-x"]}}`.
///
/// Unknown keys are rejected when deserialising; a missing `args` means no target and no extra
/// arguments (which the policy then judges, usually with a denial).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRequest {
    /// The tool, e.g. `pytest` or `fs`.
    pub tool: String,
    /// The action of the tool, e.g. `run` or `write`.
    pub action: String,
    /// What the action works on.
    #[serde(default)]
    pub args: RequestArgs,
}

/// The target and extra arguments of a [`ToolRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestArgs {
    /// A root-relative path, or for pytest a node id (`path::name[param]`).
    #[serde(default)]
    pub target: Option<String>,
    /// Extra arguments for the tool (for pytest: checked against an allowlist).
    #[serde(default)]
    pub extra_args: Vec<String>,
}

impl ToolRequest {
    /// The tool name of a pytest run.
    pub const PYTEST: &'static str = "pytest";
    /// The action name of a pytest run.
    pub const RUN: &'static str = "run";
    /// The tool name of file-system operations.
    pub const FS: &'static str = "fs";
    /// The action name of a file write.
    pub const WRITE: &'static str = "write";

    /// A request of any tool and action.
    pub fn new(tool: impl Into<String>, action: impl Into<String>, target: Option<String>) -> Self {
        ToolRequest {
            tool: tool.into(),
            action: action.into(),
            args: RequestArgs {
                target,
                extra_args: Vec::new(),
            },
        }
    }

    /// A request to run pytest on `target` with `extra_args`.
    pub fn pytest_run<A, S>(target: impl Into<String>, extra_args: A) -> Self
    where
        A: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ToolRequest {
            tool: Self::PYTEST.to_owned(),
            action: Self::RUN.to_owned(),
            args: RequestArgs {
                target: Some(target.into()),
                extra_args: extra_args.into_iter().map(Into::into).collect(),
            },
        }
    }

    /// A request to write the file `target`.
    pub fn fs_write(target: impl Into<String>) -> Self {
        Self::new(Self::FS, Self::WRITE, Some(target.into()))
    }
}
