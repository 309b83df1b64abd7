//! The one door into Warden's governance: the boundary between the policy and everything that
//! acts on its decisions.
//!
//! Orchestration crates (the executor, the classifier, the mission builder, the command line)
//! depend on this crate and never on `warden-policy` itself; `cargo xtask boundary` enforces
//! that. What passes through the door is deliberately small and named one item at a time, so
//! a change to the governance internals cannot leak into the rest of Warden unnoticed:
//!
//! - the request an agent makes: [`ToolRequest`], [`RequestArgs`];
//! - what it is decided against: [`Policy`] with its [`Limits`], and the repository [`Root`];
//! - the policy in force, with where each setting and rule came from: [`EffectivePolicy`]
//!   ([`Setting`], [`EffectiveRule`]), from [`Policy::effective`], and a first policy file
//!   for a project from what it declares: [`Starter`];
//! - what comes back: a [`Decision`], inside a [`Verdict`] whose "yes" is an [`Authorized`]
//!   permission, which only the policy can create; code that runs tests accepts nothing else;
//! - what can go wrong while setting up: [`PolicyError`] and [`InvalidPolicy`];
//! - the environment variables no run may see, whatever a policy lists: [`reserved_env`].
//!
//! A request decided through the facade:
//!
//! ```
//! use warden_governance_api::{Policy, Root, ToolRequest, Verdict};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("runtime/tests"))?;
//! let root = Root::new(dir.path())?;
//! let policy = Policy::builtin();
//!
//! let request: ToolRequest = serde_json::from_str(
//!     r#"{"tool": "pytest", "action": "run", "args": {"target": "runtime/tests", "extra_args": ["-x"]}}"#,
//! )?;
//! match policy.authorize(&root, &request) {
//!     Verdict::Allowed(authorized) => {
//!         assert_eq!(authorized.targets(), ["runtime/tests"]);
//!         assert_eq!(authorized.decision().matched_rules, ["pytest-runtime-tests"]);
//!         assert_eq!(authorized.limits().timeout.as_secs(), 300);
//!     }
//!     Verdict::Denied(decision) => panic!("denied: {}", decision.reason),
//! }
//!
//! let escape = ToolRequest::pytest_run("runtime/tests/../../../etc", ["--rootdir=/"]);
//! let decision = policy.decide(&root, &escape);
//! assert!(!decision.allowed);
//! assert!(decision.matched_rules.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use warden_policy::{
    Authorized, Decision, EffectivePolicy, EffectiveRule, InvalidPolicy, Limits, Policy,
    PolicyError, RequestArgs, Root, SandboxMode, SandboxNetwork, SandboxSettings, Setting, Starter,
    ToolRequest, Verdict, reserved_env,
};
