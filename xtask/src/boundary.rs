//! `cargo xtask boundary`: orchestration crates reach governance only through the facade.
//!
//! The rules are data in the root manifest's `[workspace.metadata.boundary]` table (each key is
//! documented there); the facts come from `cargo metadata`, matched on resolved packages rather
//! than on the names a manifest happens to use, so a rename cannot hide a dependency.

mod reexport;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;

use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::{
    DependencyKind, Metadata, MetadataCommand, Node, Package, PackageId, TargetKind,
};
use serde::Deserialize;

/// The audit's rules, from `[workspace.metadata.boundary]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rules {
    /// Package name of the governance internals.
    governance: String,
    /// Package name of the one crate allowed to depend on them.
    facade: String,
    /// Orchestration crates allowed a dev-dependency on the governance crate.
    #[serde(default)]
    dev_dependency_allow: Vec<String>,
}

/// Why the audit could not run (as opposed to violations it found).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BoundaryError {
    #[error("`cargo metadata` failed: {0}")]
    Metadata(#[from] cargo_metadata::Error),
    #[error(
        "the root manifest has no [workspace.metadata.boundary] table; add one with the keys \
         `governance`, `facade` and `dev_dependency_allow`"
    )]
    MissingRules,
    #[error("[workspace.metadata.boundary] is invalid: {0}")]
    InvalidRules(serde_json::Error),
    #[error(
        "[workspace.metadata.boundary] names `{name}` as the {role} crate, but no workspace crate has that name"
    )]
    UnknownCrate { role: &'static str, name: String },
    #[error(
        "[workspace.metadata.boundary] names `{0}` as both the governance and the facade crate"
    )]
    SameCrate(String),
    #[error("the facade `{0}` has no library target to inspect")]
    FacadeHasNoLib(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: Utf8PathBuf,
        source: io::Error,
    },
    #[error("cannot parse {path}: {source}")]
    Parse {
        path: Utf8PathBuf,
        source: syn::Error,
    },
    #[error("{0} boundary violation(s), listed above")]
    Violated(usize),
}

/// The result of an audit that ran.
#[derive(Debug)]
pub(crate) struct Report {
    /// Workspace crates examined.
    pub(crate) checked: usize,
    /// Everything that breaks the rules, in a stable order.
    pub(crate) violations: Vec<Violation>,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A crate other than the facade depends on the governance crate directly.
    Dependency {
        from: String,
        to: String,
        edge: Edge,
        /// The manifest declaring it, relative to the workspace root where possible.
        manifest: Utf8PathBuf,
    },
    /// A `dev_dependency_allow` entry that allows nothing.
    AllowEntry {
        entry: String,
        problem: AllowProblem,
        /// The root manifest, where the entry lives.
        manifest: Utf8PathBuf,
    },
    /// The facade publicly re-exports the governance crate wholesale.
    Reexport {
        facade: String,
        governance: String,
        item: String,
        /// The source file, relative to the workspace root where possible.
        file: Utf8PathBuf,
    },
}

/// How a crate depends on the governance crate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Edge {
    pub(crate) kind: EdgeKind,
    /// The platform for a target-specific dependency (`cfg(unix)`, a triple).
    pub(crate) target: Option<String>,
    /// The local name when the dependency is renamed.
    pub(crate) rename: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum EdgeKind {
    Normal,
    Build,
    Dev,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllowProblem {
    /// No workspace crate has this name.
    NoSuchCrate,
    /// The crate exists but has no dev-dependency on the governance crate.
    Unused,
    /// The governance crate or the facade: they need no entry.
    NotOrchestration,
    /// Listed more than once.
    Duplicate,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            EdgeKind::Normal => "normal",
            EdgeKind::Build => "build",
            EdgeKind::Dev => "dev",
        })?;
        if let Some(target) = &self.target {
            write!(f, ", target {target}")?;
        }
        if let Some(rename) = &self.rename {
            write!(f, ", renamed `{rename}`")?;
        }
        Ok(())
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Dependency {
                from,
                to,
                edge,
                manifest,
            } => {
                write!(f, "{from} -> {to} ({edge}) in {manifest}: ")?;
                if edge.kind == EdgeKind::Dev {
                    write!(
                        f,
                        "not in [workspace.metadata.boundary] dev_dependency_allow"
                    )
                } else {
                    write!(
                        f,
                        "only the facade may depend on {to}; use the facade instead"
                    )
                }
            }
            Violation::AllowEntry {
                entry,
                problem,
                manifest,
            } => {
                write!(f, "dev_dependency_allow entry \"{entry}\" in {manifest}: ")?;
                f.write_str(match problem {
                    AllowProblem::NoSuchCrate => "stale, no workspace crate has this name",
                    AllowProblem::Unused => {
                        "stale, this crate has no dev-dependency on the governance crate"
                    }
                    AllowProblem::NotOrchestration => {
                        "the governance and facade crates need no entry"
                    }
                    AllowProblem::Duplicate => "listed more than once",
                })
            }
            Violation::Reexport {
                facade,
                governance,
                item,
                file,
            } => write!(
                f,
                "{facade} re-exports {governance} wholesale in {file}: `{item}`; re-export named items instead"
            ),
        }
    }
}

/// Runs the audit on the workspace at `root` and prints its outcome.
pub(crate) fn run(root: &Utf8Path) -> Result<(), BoundaryError> {
    let metadata = metadata(root, &[])?;
    let report = audit(&metadata)?;
    if report.violations.is_empty() {
        println!("boundary: OK ({} crates checked)", report.checked);
        return Ok(());
    }
    for violation in &report.violations {
        eprintln!("boundary: {violation}");
    }
    Err(BoundaryError::Violated(report.violations.len()))
}

/// `cargo metadata` for the workspace at `root`.
pub(crate) fn metadata(root: &Utf8Path, extra_args: &[&str]) -> Result<Metadata, BoundaryError> {
    Ok(MetadataCommand::new()
        .manifest_path(root.join("Cargo.toml"))
        .current_dir(root)
        .other_options(
            extra_args
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )
        .exec()?)
}

/// Checks a workspace's metadata against the rules in its `[workspace.metadata.boundary]`.
pub(crate) fn audit(metadata: &Metadata) -> Result<Report, BoundaryError> {
    let rules: Rules = serde_json::from_value(
        metadata
            .workspace_metadata
            .get("boundary")
            .cloned()
            .ok_or(BoundaryError::MissingRules)?,
    )
    .map_err(BoundaryError::InvalidRules)?;
    if rules.governance == rules.facade {
        return Err(BoundaryError::SameCrate(rules.governance));
    }
    let members: Vec<&Package> = metadata.workspace_packages();
    let member = |role: &'static str, name: &str| {
        members
            .iter()
            .copied()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| BoundaryError::UnknownCrate {
                role,
                name: name.to_owned(),
            })
    };
    let governance = member("governance", &rules.governance)?;
    let facade = member("facade", &rules.facade)?;
    let nodes: BTreeMap<&PackageId, &Node> = metadata
        .resolve
        .iter()
        .flat_map(|resolve| &resolve.nodes)
        .map(|node| (&node.id, node))
        .collect();
    let root_manifest = relative(
        &metadata.workspace_root,
        &metadata.workspace_root.join("Cargo.toml"),
    );

    let mut violations = Vec::new();
    let mut with_dev_dependency = BTreeSet::new();
    for package in &metadata.packages {
        if package.id == governance.id || package.id == facade.id {
            continue;
        }
        let is_member = members.iter().any(|m| m.id == package.id);
        for edge in edges_to(
            package,
            is_member,
            nodes.get(&package.id).copied(),
            governance,
        ) {
            if edge.kind == EdgeKind::Dev {
                with_dev_dependency.insert(package.name.as_str());
                if rules
                    .dev_dependency_allow
                    .contains(&package.name.to_string())
                {
                    continue;
                }
            }
            violations.push(Violation::Dependency {
                from: package.name.to_string(),
                to: governance.name.to_string(),
                edge,
                manifest: relative(&metadata.workspace_root, &package.manifest_path),
            });
        }
    }

    let mut seen = BTreeSet::new();
    for entry in &rules.dev_dependency_allow {
        let problem = if !seen.insert(entry.as_str()) {
            Some(AllowProblem::Duplicate)
        } else if entry == &rules.governance || entry == &rules.facade {
            Some(AllowProblem::NotOrchestration)
        } else if !members.iter().any(|m| m.name.as_str() == entry) {
            Some(AllowProblem::NoSuchCrate)
        } else if !with_dev_dependency.contains(entry.as_str()) {
            Some(AllowProblem::Unused)
        } else {
            None
        };
        if let Some(problem) = problem {
            violations.push(Violation::AllowEntry {
                entry: entry.clone(),
                problem,
                manifest: root_manifest.clone(),
            });
        }
    }

    let facade_names = extern_names(facade, nodes.get(&facade.id).copied(), governance);
    for finding in reexport::scan(&facade_sources(facade)?, &facade_names) {
        violations.push(Violation::Reexport {
            facade: facade.name.to_string(),
            governance: governance.name.to_string(),
            item: finding.item,
            file: relative(&metadata.workspace_root, &finding.file),
        });
    }

    Ok(Report {
        checked: members.len(),
        violations,
    })
}

/// Every way `package` depends directly on `governance`: the declared dependencies (which see
/// optional ones the resolve leaves out) and the resolve graph (which sees through renames and
/// patches by package id). Dev-dependencies only count for workspace members, the only
/// packages whose tests are built.
fn edges_to(
    package: &Package,
    is_member: bool,
    node: Option<&Node>,
    governance: &Package,
) -> Vec<Edge> {
    let mut edges: BTreeMap<(EdgeKind, Option<String>), Option<String>> = BTreeMap::new();
    if is_member {
        for dependency in package
            .dependencies
            .iter()
            .filter(|d| d.name == governance.name.as_str())
        {
            edges.insert(
                (
                    edge_kind(dependency.kind),
                    dependency.target.as_ref().map(ToString::to_string),
                ),
                dependency.rename.clone(),
            );
        }
    }
    let lib_name = lib_name(governance);
    for dependency in node
        .into_iter()
        .flat_map(|node| &node.deps)
        .filter(|d| d.pkg == governance.id)
    {
        let rename = (Some(dependency.name.as_str()) != lib_name.as_deref())
            .then(|| dependency.name.clone());
        for kind in &dependency.dep_kinds {
            edges
                .entry((
                    edge_kind(kind.kind),
                    kind.target.as_ref().map(ToString::to_string),
                ))
                .or_insert_with(|| rename.clone());
        }
    }
    edges
        .into_iter()
        .filter(|((kind, _), _)| is_member || *kind != EdgeKind::Dev)
        .map(|((kind, target), rename)| Edge {
            kind,
            target,
            rename,
        })
        .collect()
}

fn edge_kind(kind: DependencyKind) -> EdgeKind {
    match kind {
        DependencyKind::Development => EdgeKind::Dev,
        DependencyKind::Build => EdgeKind::Build,
        // An unknown kind is treated as the strictest: fail closed.
        _ => EdgeKind::Normal,
    }
}

/// The names under which the facade's code can refer to the governance crate.
fn extern_names(facade: &Package, node: Option<&Node>, governance: &Package) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = lib_name(governance).into_iter().collect();
    names.insert(governance.name.replace('-', "_"));
    for dependency in facade
        .dependencies
        .iter()
        .filter(|d| d.name == governance.name.as_str())
    {
        if let Some(rename) = &dependency.rename {
            names.insert(rename.replace('-', "_"));
        }
    }
    for dependency in node
        .into_iter()
        .flat_map(|node| &node.deps)
        .filter(|d| d.pkg == governance.id)
    {
        names.insert(dependency.name.clone());
    }
    names
}

fn lib_targets(package: &Package) -> impl Iterator<Item = &cargo_metadata::Target> {
    package.targets.iter().filter(|target| {
        target.kind.iter().any(|kind| {
            matches!(
                kind,
                TargetKind::Lib | TargetKind::RLib | TargetKind::DyLib | TargetKind::ProcMacro
            )
        })
    })
}

fn lib_name(package: &Package) -> Option<String> {
    lib_targets(package)
        .next()
        .map(|target| target.name.replace('-', "_"))
}

/// Parses every `.rs` file under the directory of the facade's library root, nested
/// directories included (a module file need not be declared to be worth rejecting).
fn facade_sources(facade: &Package) -> Result<Vec<(Utf8PathBuf, syn::File)>, BoundaryError> {
    let lib = lib_targets(facade)
        .next()
        .ok_or_else(|| BoundaryError::FacadeHasNoLib(facade.name.to_string()))?;
    let dir = lib.src_path.parent().unwrap_or(&lib.src_path);
    let mut files = Vec::new();
    collect_rs_files(dir, &mut files)?;
    if !files.contains(&lib.src_path) {
        files.push(lib.src_path.clone());
    }
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| BoundaryError::Read {
                path: path.clone(),
                source,
            })?;
            let file = syn::parse_file(&text).map_err(|source| BoundaryError::Parse {
                path: path.clone(),
                source,
            })?;
            Ok((path, file))
        })
        .collect()
}

fn collect_rs_files(dir: &Utf8Path, out: &mut Vec<Utf8PathBuf>) -> Result<(), BoundaryError> {
    let read_error = |source| BoundaryError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut entries = dir
        .read_dir_utf8()
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    for entry in entries {
        let path = entry.path();
        // Follows a symlinked file, but not a symlinked directory (no cycles).
        let file_type = entry.file_type().map_err(read_error)?;
        if file_type.is_dir() {
            collect_rs_files(path, out)?;
        } else if path.extension() == Some("rs") && path.is_file() {
            out.push(path.to_owned());
        }
    }
    Ok(())
}

fn relative(root: &Utf8Path, path: &Utf8Path) -> Utf8PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_owned()
}
