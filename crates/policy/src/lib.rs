//! Warden's governance internals: whether a tool request may go ahead, and why.
//!
//! An agent asks for a [`ToolRequest`] (run pytest on a target, write a file). A [`Policy`]
//! (TOML rules and limits, or the built-in default) decides it against a repository [`Root`],
//! fail-closed: the answer is a [`Decision`] naming the reason and the rules that decided it,
//! and a denial is an ordinary value, never a panic or an `Err`. [`Policy::authorize`] turns an
//! allowed request into an [`Authorized`] permission, the only thing code that runs tests
//! accepts, and which only this crate can create.
//!
//! What the policy guards against, before and beside its rules:
//! - targets that are empty, absolute, contain NUL or invisible characters, start with `-` or
//!   `@` (pytest would read them as an option or an argument file), or leave the root through
//!   `..` (even transiently) or through symlinks, which are resolved against the real file
//!   system before any scope test;
//! - directory targets with a symlink beneath them that leads out of scope (pytest follows
//!   directory symlinks while collecting);
//! - pytest arguments off the allowlist: anything that could load code, change the root or
//!   configuration, write files or add targets is denied by name, anything unknown too;
//! - environment variables that let code, options or libraries into a run ([`reserved_env`]):
//!   a policy cannot pass them to tests, and the executor never does.
//!
//! Orchestration crates do not use this crate directly; they go through
//! `warden-governance-api`, the one door into governance.
//!
//! ```
//! use warden_policy::{Policy, Root, ToolRequest};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("runtime/tests"))?;
//! let root = Root::new(dir.path())?;
//! let policy = Policy::builtin();
//!
//! let ok = policy.decide(&root, &ToolRequest::pytest_run("runtime/tests", ["-x"]));
//! assert!(ok.allowed);
//! assert_eq!(ok.matched_rules, ["pytest-runtime-tests"]);
//!
//! let sibling = policy.decide(&root, &ToolRequest::pytest_run("runtime/testsX", Vec::<String>::new()));
//! assert!(!sibling.allowed);
//! assert!(sibling.reason.contains("default deny"), "{}", sibling.reason);
//!
//! let plugin = policy.decide(&root, &ToolRequest::pytest_run("runtime/tests", ["-p", "evil"]));
//! assert!(!plugin.allowed);
//! assert!(plugin.reason.contains("`-p`"), "{}", plugin.reason);
//!
//! let protected = policy.decide(&root, &ToolRequest::fs_write("docs/00_foundations/x.md"));
//! assert_eq!(protected.matched_rules, ["protect-foundations"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod addopts;
mod args;
mod decision;
mod effective;
mod env;
mod error;
mod file;
mod inifile;
mod policy;
mod request;
mod resolve;
mod root;
mod sandbox;
mod starter;
mod target;

pub use decision::{Authorized, Decision, Verdict};
pub use effective::{EffectivePolicy, EffectiveRule, Setting};
pub use env::reserved_env;
pub use error::{InvalidPolicy, PolicyError};
pub use policy::{Limits, Policy};
pub use request::{RequestArgs, ToolRequest};
pub use root::Root;
pub use sandbox::{SandboxMode, SandboxNetwork, SandboxSettings};
pub use starter::Starter;
