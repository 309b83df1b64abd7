//! The audit run on small synthetic workspaces (no external dependencies, so `cargo metadata
//! --offline` needs no network) that do and do not break each rule, and on the real one.

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};
use tempfile::TempDir;

use super::*;

/// A synthetic workspace: `policy` (governance), `facade`, and one orchestration crate `orch`.
struct Workspace {
    _dir: TempDir,
    root: Utf8PathBuf,
}

const CLEAN_FACADE: &str = "//! Facade.\npub use my_policy::{Decision, Root};\nuse my_policy::*;\n";

impl Workspace {
    /// `orch_deps` is the body appended to orch's manifest (dependency tables);
    /// `allow` the TOML array for `dev_dependency_allow`.
    fn new(orch_deps: &str, allow: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let ws = Workspace { _dir: dir, root };
        ws.write(
            "Cargo.toml",
            &format!(
                "[workspace]\nresolver = \"3\"\nmembers = [\"policy\", \"facade\", \"orch\", \"other\"]\n\n\
                 [workspace.metadata.boundary]\ngovernance = \"my-policy\"\nfacade = \"my-facade\"\n\
                 dev_dependency_allow = {allow}\n"
            ),
        );
        ws.package("policy", "my-policy", "");
        ws.write(
            "policy/src/lib.rs",
            "pub struct Decision;\npub struct Root;\n",
        );
        ws.package(
            "facade",
            "my-facade",
            "[dependencies]\nmy-policy = { path = \"../policy\" }\n",
        );
        ws.write("facade/src/lib.rs", CLEAN_FACADE);
        ws.package(
            "orch",
            "orch",
            &format!("[dependencies]\nmy-facade = {{ path = \"../facade\" }}\n{orch_deps}"),
        );
        ws.write("orch/src/lib.rs", "");
        ws.package("other", "other", "");
        ws.write("other/src/lib.rs", "");
        ws
    }

    fn package(&self, dir: &str, name: &str, body: &str) {
        self.write(
            &format!("{dir}/Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n{body}"
            ),
        );
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn audit(&self) -> Result<Report, BoundaryError> {
        audit(&metadata(&self.root, &["--offline"])?)
    }

    fn violations(&self) -> Vec<Violation> {
        self.audit().unwrap().violations
    }
}

fn dependency(kind: EdgeKind, target: Option<&str>, rename: Option<&str>) -> Violation {
    Violation::Dependency {
        from: "orch".into(),
        to: "my-policy".into(),
        edge: Edge {
            kind,
            target: target.map(Into::into),
            rename: rename.map(Into::into),
        },
        manifest: "orch/Cargo.toml".into(),
    }
}

fn reexport(item: &str, file: &str) -> Violation {
    Violation::Reexport {
        facade: "my-facade".into(),
        governance: "my-policy".into(),
        item: item.into(),
        file: file.into(),
    }
}

fn allow_entry(entry: &str, problem: AllowProblem) -> Violation {
    Violation::AllowEntry {
        entry: entry.into(),
        problem,
        manifest: "Cargo.toml".into(),
    }
}

#[test]
fn clean_workspace_passes_and_counts_its_crates() {
    let report = Workspace::new("", "[]").audit().unwrap();
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.checked, 4);
}

#[test]
fn normal_dependency_is_a_violation() {
    let ws = Workspace::new("my-policy = { path = \"../policy\" }\n", "[]");
    let violations = ws.violations();
    assert_eq!(violations, vec![dependency(EdgeKind::Normal, None, None)]);
    assert_eq!(
        violations[0].to_string(),
        "orch -> my-policy (normal) in orch/Cargo.toml: only the facade may depend on my-policy; use the facade instead"
    );
}

#[test]
fn renamed_dependency_is_a_violation() {
    let ws = Workspace::new(
        "innocent = { path = \"../policy\", package = \"my-policy\" }\n",
        "[]",
    );
    let violations = ws.violations();
    assert_eq!(
        violations,
        vec![dependency(EdgeKind::Normal, None, Some("innocent"))]
    );
    assert!(
        violations[0]
            .to_string()
            .starts_with("orch -> my-policy (normal, renamed `innocent`)")
    );
}

#[test]
fn build_dependency_is_a_violation() {
    let ws = Workspace::new(
        "[build-dependencies]\nmy-policy = { path = \"../policy\" }\n",
        "[]",
    );
    assert_eq!(
        ws.violations(),
        vec![dependency(EdgeKind::Build, None, None)]
    );
}

#[test]
fn target_specific_dependency_is_a_violation() {
    let ws = Workspace::new(
        "[target.'cfg(windows)'.dependencies]\ngov = { path = \"../policy\", package = \"my-policy\" }\n",
        "[]",
    );
    let violations = ws.violations();
    assert_eq!(
        violations,
        vec![dependency(
            EdgeKind::Normal,
            Some("cfg(windows)"),
            Some("gov")
        )]
    );
    assert!(
        violations[0]
            .to_string()
            .contains("(normal, target cfg(windows), renamed `gov`)")
    );
}

#[test]
fn optional_dependency_the_resolve_leaves_out_is_still_a_violation() {
    let ws = Workspace::new(
        "my-policy = { path = \"../policy\", optional = true }\n",
        "[]",
    );
    assert_eq!(
        ws.violations(),
        vec![dependency(EdgeKind::Normal, None, None)]
    );
}

#[test]
fn dev_dependency_outside_the_allow_list_is_a_violation() {
    let ws = Workspace::new(
        "[dev-dependencies]\nmy-policy = { path = \"../policy\" }\n",
        "[]",
    );
    let violations = ws.violations();
    assert_eq!(violations, vec![dependency(EdgeKind::Dev, None, None)]);
    assert!(
        violations[0]
            .to_string()
            .contains("not in [workspace.metadata.boundary] dev_dependency_allow")
    );
}

#[test]
fn allowed_dev_dependency_passes() {
    let ws = Workspace::new(
        "[dev-dependencies]\np = { path = \"../policy\", package = \"my-policy\" }\n",
        "[\"orch\"]",
    );
    assert_eq!(ws.violations(), vec![]);
}

#[test]
fn allowing_a_dev_dependency_does_not_allow_a_normal_one() {
    let ws = Workspace::new(
        "my-policy = { path = \"../policy\" }\n[dev-dependencies]\nmy-policy = { path = \"../policy\" }\n",
        "[\"orch\"]",
    );
    assert_eq!(
        ws.violations(),
        vec![dependency(EdgeKind::Normal, None, None)]
    );
}

#[test]
fn stale_allow_entries_are_violations() {
    let ws = Workspace::new("", "[\"other\", \"ghost\", \"my-facade\"]");
    let violations = ws.violations();
    assert_eq!(
        violations,
        vec![
            allow_entry("other", AllowProblem::Unused),
            allow_entry("ghost", AllowProblem::NoSuchCrate),
            allow_entry("my-facade", AllowProblem::NotOrchestration),
        ]
    );
    assert!(
        violations[1]
            .to_string()
            .contains("\"ghost\" in Cargo.toml: stale")
    );
}

#[test]
fn duplicate_allow_entry_is_a_violation() {
    let ws = Workspace::new(
        "[dev-dependencies]\nmy-policy = { path = \"../policy\" }\n",
        "[\"orch\", \"orch\"]",
    );
    assert_eq!(
        ws.violations(),
        vec![allow_entry("orch", AllowProblem::Duplicate)]
    );
}

#[test]
fn facade_glob_reexport_is_a_violation() {
    let ws = Workspace::new("", "[]");
    ws.write("facade/src/lib.rs", "pub use my_policy::*;\n");
    let violations = ws.violations();
    assert_eq!(
        violations,
        vec![reexport("pub use my_policy::*", "facade/src/lib.rs")]
    );
    assert_eq!(
        violations[0].to_string(),
        "my-facade re-exports my-policy wholesale in facade/src/lib.rs: `pub use my_policy::*`; re-export named items instead"
    );
}

#[test]
fn facade_crate_reexport_in_a_nested_module_is_a_violation() {
    let ws = Workspace::new("", "[]");
    ws.write("facade/src/lib.rs", &format!("{CLEAN_FACADE}mod inner;\n"));
    ws.write("facade/src/inner.rs", "pub mod deep;\n");
    ws.write(
        "facade/src/inner/deep.rs",
        "pub use my_policy as everything;\n",
    );
    assert_eq!(
        ws.violations(),
        vec![reexport(
            "pub use my_policy as everything",
            "facade/src/inner/deep.rs"
        )]
    );
}

#[test]
fn facade_reexport_under_a_renamed_dependency_is_a_violation() {
    let ws = Workspace::new("", "[]");
    ws.package(
        "facade",
        "my-facade",
        "[dependencies]\ngov-core = { path = \"../policy\", package = \"my-policy\" }\n",
    );
    ws.write(
        "facade/src/lib.rs",
        "pub use gov_core::Decision;\npub extern crate gov_core;\npub use ::gov_core::{self};\n",
    );
    assert_eq!(
        ws.violations(),
        vec![
            reexport("pub extern crate gov_core", "facade/src/lib.rs"),
            reexport("pub use ::gov_core::{self}", "facade/src/lib.rs"),
        ]
    );
}

#[test]
fn facade_with_a_custom_lib_name_is_matched_on_that_name() {
    let ws = Workspace::new("", "[]");
    ws.package("policy", "my-policy", "[lib]\nname = \"rules_engine\"\n");
    ws.write(
        "facade/src/lib.rs",
        "pub use rules_engine::{Decision, *};\n",
    );
    assert_eq!(
        ws.violations(),
        vec![reexport("pub use rules_engine::*", "facade/src/lib.rs")]
    );
}

#[test]
fn clean_facade_passes() {
    let ws = Workspace::new("", "[]");
    ws.write(
        "facade/src/lib.rs",
        "pub use my_policy::{Decision, Root as PolicyRoot};\nuse my_policy as internal;\npub(crate) use my_policy::*;\nmod m;\n",
    );
    ws.write(
        "facade/src/m.rs",
        "pub use super::internal::Decision as D;\n",
    );
    assert_eq!(ws.violations(), vec![]);
}

#[test]
fn unparsable_facade_source_fails_the_audit() {
    let ws = Workspace::new("", "[]");
    ws.write("facade/src/broken.rs", "pub use my_policy::{;\n");
    let error = ws.audit().unwrap_err();
    assert!(
        matches!(&error, BoundaryError::Parse { path, .. } if path.ends_with("facade/src/broken.rs")),
        "{error}"
    );
}

#[test]
fn missing_or_invalid_rules_fail_the_audit() {
    let ws = Workspace::new("", "[]");
    let manifest = fs::read_to_string(ws.root.join("Cargo.toml")).unwrap();

    let without_table = manifest
        .split("[workspace.metadata.boundary]")
        .next()
        .unwrap();
    ws.write("Cargo.toml", without_table);
    assert!(matches!(ws.audit(), Err(BoundaryError::MissingRules)));

    ws.write(
        "Cargo.toml",
        &format!("{manifest}governance_extra = true\n"),
    );
    assert!(matches!(ws.audit(), Err(BoundaryError::InvalidRules(_))));

    ws.write(
        "Cargo.toml",
        &manifest.replace("\"my-facade\"", "\"no-such-facade\""),
    );
    assert!(matches!(
        ws.audit(),
        Err(BoundaryError::UnknownCrate { role: "facade", name }) if name == "no-such-facade"
    ));

    ws.write(
        "Cargo.toml",
        &manifest.replace("\"my-facade\"", "\"my-policy\""),
    );
    assert!(matches!(ws.audit(), Err(BoundaryError::SameCrate(_))));
}

#[test]
fn the_real_workspace_passes() {
    let root = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let report = audit(&metadata(root, &[]).unwrap()).unwrap();
    assert_eq!(
        report.violations,
        vec![],
        "violations in the real workspace"
    );
    assert!(
        report.checked >= 9,
        "only {} crates checked",
        report.checked
    );
}

#[test]
fn the_resolve_graph_alone_catches_a_dependency() {
    // Each source of facts must stand on its own: here the declared list is emptied, so only
    // the resolve graph (matched by package id) can see the renamed dependency.
    let ws = Workspace::new(
        "sneaky = { path = \"../policy\", package = \"my-policy\" }\n",
        "[]",
    );
    let mut metadata = metadata(&ws.root, &["--offline"]).unwrap();
    for package in &mut metadata.packages {
        if package.name.as_str() == "orch" {
            package.dependencies.clear();
        }
    }
    let report = audit(&metadata).unwrap();
    assert_eq!(
        report.violations,
        vec![dependency(EdgeKind::Normal, None, Some("sneaky"))]
    );
}
