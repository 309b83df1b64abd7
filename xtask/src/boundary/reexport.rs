//! Finds wholesale re-exports of the governance crate in the facade's source.
//!
//! A named re-export (`pub use warden_policy::Decision;`) keeps the facade's surface small and
//! reviewable; a glob or a re-export of the crate itself turns the facade into an open door.
//! The scan is syntactic (no name resolution), so it is deliberately conservative: any local
//! name that provably refers into the governance crate (through `use ... as`, `extern crate ...
//! as`, or a plain `use` of a path inside it) is treated like the crate's own name.

use std::collections::BTreeSet;

use camino::Utf8PathBuf;
use syn::ext::IdentExt;
use syn::{Ident, Item, UseTree, Visibility};

/// A wholesale re-export found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The file it is in, as given to [`scan`].
    pub(crate) file: Utf8PathBuf,
    /// The offending item, rendered as source (`pub use warden_policy::*`).
    pub(crate) item: String,
}

/// Scans parsed files for public re-exports of the crate known under `crate_names` (the
/// extern-crate names the facade uses for the governance crate: its lib name and any rename).
pub(crate) fn scan(
    files: &[(Utf8PathBuf, syn::File)],
    crate_names: &BTreeSet<String>,
) -> Vec<Finding> {
    let names = Names::resolve(files, crate_names);
    let mut findings = Vec::new();
    for (path, file) in files {
        for_each_item(&file.items, &mut |item| {
            if let Some(rendered) = wholesale_reexport(item, &names) {
                findings.push(Finding {
                    file: path.clone(),
                    item: rendered,
                });
            }
        });
    }
    findings
}

/// The local names that refer into the governance crate.
#[derive(Debug, Default)]
struct Names {
    /// Names for the crate itself (its extern names and aliases of it).
    crate_itself: BTreeSet<String>,
    /// Names for anything inside the crate, the crate itself included (a glob through any of
    /// them re-exports governance items wholesale).
    rooted: BTreeSet<String>,
}

impl Names {
    /// Collects aliases across all files until no new one appears: an alias may be built on
    /// another alias, in any order of files and items.
    fn resolve(files: &[(Utf8PathBuf, syn::File)], crate_names: &BTreeSet<String>) -> Self {
        let mut names = Names {
            crate_itself: crate_names.clone(),
            rooted: crate_names.clone(),
        };
        loop {
            let before = (names.crate_itself.len(), names.rooted.len());
            for (_, file) in files {
                for_each_item(&file.items, &mut |item| names.learn_from(item));
            }
            if before == (names.crate_itself.len(), names.rooted.len()) {
                return names;
            }
        }
    }

    fn learn_from(&mut self, item: &Item) {
        match item {
            Item::ExternCrate(extern_crate) => {
                if let Some((_, alias)) = &extern_crate.rename
                    && self.crate_itself.contains(&ident(&extern_crate.ident))
                {
                    self.crate_itself.insert(ident(alias));
                    self.rooted.insert(ident(alias));
                }
            }
            Item::Use(item_use) => {
                for import in flatten(&item_use.tree) {
                    let Leaf::Item { name, rename } = &import.leaf else {
                        continue;
                    };
                    let target = import.target();
                    let Some(first) = target.first() else {
                        continue;
                    };
                    if !self.rooted.contains(*first) {
                        continue;
                    }
                    let binding = rename.clone().unwrap_or_else(|| {
                        if name == "self" {
                            target.last().map_or_else(String::new, |s| (*s).to_owned())
                        } else {
                            name.clone()
                        }
                    });
                    if target.len() == 1 && self.crate_itself.contains(*first) {
                        self.crate_itself.insert(binding.clone());
                    }
                    self.rooted.insert(binding);
                }
            }
            _ => {}
        }
    }
}

/// Renders `item` if it publicly re-exports the governance crate wholesale.
fn wholesale_reexport(item: &Item, names: &Names) -> Option<String> {
    match item {
        Item::ExternCrate(extern_crate)
            if is_pub(&extern_crate.vis)
                && names.crate_itself.contains(&ident(&extern_crate.ident)) =>
        {
            let alias = extern_crate
                .rename
                .as_ref()
                .map(|(_, alias)| format!(" as {}", ident(alias)))
                .unwrap_or_default();
            Some(format!(
                "pub extern crate {}{alias}",
                ident(&extern_crate.ident)
            ))
        }
        Item::Use(item_use) if is_pub(&item_use.vis) => {
            let offending: Vec<String> = flatten(&item_use.tree)
                .into_iter()
                .filter(|import| import.is_wholesale(names))
                .map(|import| import.render(item_use.leading_colon.is_some()))
                .collect();
            (!offending.is_empty()).then(|| format!("pub use {}", offending.join(", ")))
        }
        _ => None,
    }
}

fn is_pub(vis: &Visibility) -> bool {
    // `pub(crate)`, `pub(super)` and `pub(in ...)` do not leave the facade.
    matches!(vis, Visibility::Public(_))
}

fn ident(ident: &Ident) -> String {
    ident.unraw().to_string()
}

/// Calls `f` on every item, descending into inline modules (`mod m { ... }`); modules in
/// their own files are separate entries of the file list.
fn for_each_item(items: &[Item], f: &mut impl FnMut(&Item)) {
    for item in items {
        f(item);
        if let Item::Mod(module) = item
            && let Some((_, inner)) = &module.content
        {
            for_each_item(inner, f);
        }
    }
}

/// One leaf of a use tree, with the path leading to it.
#[derive(Debug)]
struct Import {
    prefix: Vec<String>,
    leaf: Leaf,
}

#[derive(Debug)]
enum Leaf {
    /// `name` or `name as rename`; `name` may be `self` (the prefix itself).
    Item {
        name: String,
        rename: Option<String>,
    },
    Glob,
}

impl Import {
    /// The path this import refers to, without the `crate`/`self`/`super` anchors: the scan
    /// does no name resolution, so an alias is matched wherever it is reached from.
    fn target(&self) -> Vec<&str> {
        let mut path: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        if let Leaf::Item { name, .. } = &self.leaf
            && name != "self"
        {
            path.push(name);
        }
        let anchors = path
            .iter()
            .take_while(|s| matches!(**s, "crate" | "self" | "super"))
            .count();
        path.split_off(anchors)
    }

    fn is_wholesale(&self, names: &Names) -> bool {
        let target = self.target();
        match (&self.leaf, target.as_slice()) {
            (Leaf::Glob, [first, ..]) => names.rooted.contains(*first),
            (Leaf::Item { .. }, [only]) => names.crate_itself.contains(*only),
            _ => false,
        }
    }

    fn render(&self, leading_colon: bool) -> String {
        let mut out = String::new();
        if leading_colon {
            out.push_str("::");
        }
        for segment in &self.prefix {
            out.push_str(segment);
            out.push_str("::");
        }
        match &self.leaf {
            Leaf::Glob => out.push('*'),
            Leaf::Item { name, rename } => {
                let leaf = match rename {
                    Some(rename) => format!("{name} as {rename}"),
                    None => name.clone(),
                };
                if name == "self" {
                    out.push('{');
                    out.push_str(&leaf);
                    out.push('}');
                } else {
                    out.push_str(&leaf);
                }
            }
        }
        out
    }
}

fn flatten(tree: &UseTree) -> Vec<Import> {
    fn walk(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<Import>) {
        match tree {
            UseTree::Path(path) => {
                prefix.push(ident(&path.ident));
                walk(&path.tree, prefix, out);
                prefix.pop();
            }
            UseTree::Name(name) => out.push(Import {
                prefix: prefix.clone(),
                leaf: Leaf::Item {
                    name: ident(&name.ident),
                    rename: None,
                },
            }),
            UseTree::Rename(rename) => out.push(Import {
                prefix: prefix.clone(),
                leaf: Leaf::Item {
                    name: ident(&rename.ident),
                    rename: Some(ident(&rename.rename)),
                },
            }),
            UseTree::Glob(_) => out.push(Import {
                prefix: prefix.clone(),
                leaf: Leaf::Glob,
            }),
            UseTree::Group(group) => {
                for item in &group.items {
                    walk(item, prefix, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(sources: &[&str]) -> Vec<String> {
        let files: Vec<(Utf8PathBuf, syn::File)> = sources
            .iter()
            .enumerate()
            .map(|(i, src)| {
                (
                    Utf8PathBuf::from(format!("f{i}.rs")),
                    syn::parse_file(src).unwrap(),
                )
            })
            .collect();
        let names = BTreeSet::from(["warden_policy".to_owned(), "gov".to_owned()]);
        scan(&files, &names).into_iter().map(|f| f.item).collect()
    }

    #[test]
    fn rejects_every_wholesale_form() {
        let table = [
            ("pub use warden_policy::*;", "pub use warden_policy::*"),
            ("pub use warden_policy;", "pub use warden_policy"),
            ("pub use warden_policy as x;", "pub use warden_policy as x"),
            (
                "pub use ::warden_policy::{self};",
                "pub use ::warden_policy::{self}",
            ),
            (
                "pub use warden_policy::{self as p};",
                "pub use warden_policy::{self as p}",
            ),
            (
                "pub use warden_policy::{Decision, *};",
                "pub use warden_policy::*",
            ),
            ("pub use {warden_policy::*};", "pub use warden_policy::*"),
            (
                "pub use warden_policy::rules::*;",
                "pub use warden_policy::rules::*",
            ),
            ("pub use r#warden_policy::*;", "pub use warden_policy::*"),
            (
                "pub extern crate warden_policy;",
                "pub extern crate warden_policy",
            ),
            (
                "pub extern crate warden_policy as p;",
                "pub extern crate warden_policy as p",
            ),
            ("pub use gov::*;", "pub use gov::*"),
            ("pub use gov;", "pub use gov"),
            (
                "pub mod inner { pub use warden_policy::*; }",
                "pub use warden_policy::*",
            ),
            ("mod inner { pub use gov as g; }", "pub use gov as g"),
        ];
        for (source, expected) in table {
            assert_eq!(
                findings(&[source]),
                vec![expected.to_owned()],
                "source: {source}"
            );
        }
    }

    #[test]
    fn follows_private_aliases_to_a_public_reexport() {
        let table = [
            ("use warden_policy as wp; pub use wp::*;", "pub use wp::*"),
            (
                "use warden_policy as wp; pub use crate::wp;",
                "pub use crate::wp",
            ),
            (
                "pub(crate) use gov as g; pub use self::g as h;",
                "pub use self::g as h",
            ),
            (
                "extern crate warden_policy as wp; pub use wp::*;",
                "pub use wp::*",
            ),
            (
                "use warden_policy::rules; pub use rules::*;",
                "pub use rules::*",
            ),
            (
                "use warden_policy::{self as a}; use a as b; pub use b::*;",
                "pub use b::*",
            ),
            // Aliases reach across files and the order of items does not matter.
            (
                "pub use late::*; use warden_policy as late;",
                "pub use late::*",
            ),
        ];
        for (source, expected) in table {
            assert_eq!(
                findings(&[source]),
                vec![expected.to_owned()],
                "source: {source}"
            );
        }
        assert_eq!(
            findings(&["pub use crate::alias::*;", "use gov as alias;"]),
            vec!["pub use crate::alias::*".to_owned()]
        );
    }

    #[test]
    fn accepts_named_reexports_and_private_imports() {
        let clean = [
            "pub use warden_policy::{Decision, Policy, Root};",
            "pub use warden_policy::Decision as PolicyDecision;",
            "pub use gov::rules::Rule;",
            "use warden_policy::*;",
            "use warden_policy;",
            "use warden_policy as wp; pub use wp::Decision;",
            "pub(crate) use warden_policy::*;",
            "pub(crate) use warden_policy as p;",
            "pub(super) use gov;",
            "extern crate warden_policy;",
            "pub use other_crate::*;",
            "pub use self::inner::*; mod inner { pub struct Thing; }",
            "fn f() { use warden_policy::*; }",
        ];
        for source in clean {
            assert_eq!(
                findings(&[source]),
                Vec::<String>::new(),
                "source: {source}"
            );
        }
    }

    #[test]
    fn reports_each_offending_item_once_per_item() {
        let found = findings(&["pub use warden_policy::{*, a::*}; pub use gov;"]);
        assert_eq!(
            found,
            vec![
                "pub use warden_policy::*, warden_policy::a::*",
                "pub use gov"
            ]
        );
    }
}
