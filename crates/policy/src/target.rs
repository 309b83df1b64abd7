//! Reading a target string: syntax checks and lexical, component-wise normalisation.
//!
//! Nothing here touches the file system; [`crate::resolve`] does that afterwards. The order is
//! deliberate: a target is first normalised lexically (so `..` can be judged on what was
//! written, and what runs is the normalised form), then resolved against the real tree.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Longest target accepted, in bytes.
const MAX_TARGET_BYTES: usize = 4096;
/// Longest path component accepted, in bytes (the common file-system limit).
const MAX_COMPONENT_BYTES: usize = 255;

/// How a tool reads its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// A pytest collection argument: a path, optionally followed by `::name` parts and a
    /// `[param]` suffix, split exactly as pytest splits it.
    PytestNodeId,
    /// A plain path naming something beneath the root (not the root itself).
    FilePath,
}

/// A target after syntax checks and lexical normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Normal components of the root-relative path; empty means the root itself.
    pub(crate) components: Vec<String>,
    /// pytest selection parts after the path (`::`-separated), possibly none.
    pub(crate) names: Vec<String>,
    /// pytest's parametrisation suffix, from the first `[` on, as written.
    pub(crate) param: Option<String>,
}

impl Target {
    /// The normalised root-relative path (`.` for the root itself).
    pub(crate) fn path_str(&self) -> String {
        if self.components.is_empty() {
            ".".to_owned()
        } else {
            self.components.join("/")
        }
    }

    /// The root-relative path as a relative `PathBuf` (empty for the root itself).
    pub(crate) fn rel_path(&self) -> PathBuf {
        self.components.iter().collect()
    }

    /// The normalised target as pytest is to receive it: path, names, parametrisation.
    pub(crate) fn to_arg(&self) -> String {
        let mut out = self.path_str();
        for name in &self.names {
            out.push_str("::");
            out.push_str(name);
        }
        if let Some(param) = &self.param {
            out.push_str(param);
        }
        out
    }

    /// Whether `self` selects nothing outside `outer`: its path lies within `outer`'s path, and
    /// when `outer` selects test names, `self` selects the same ones or parametrised instances
    /// of them.
    pub(crate) fn is_within(&self, outer: &Target) -> bool {
        if !self.rel_path().starts_with(outer.rel_path()) {
            return false;
        }
        if outer.names.is_empty() {
            return true;
        }
        if self.components != outer.components || self.names.len() < outer.names.len() {
            return false;
        }
        if self.names[..outer.names.len()] != outer.names[..] {
            return false;
        }
        match &outer.param {
            None => true,
            // A specific parametrised instance only covers itself.
            Some(param) => {
                self.names.len() == outer.names.len() && self.param.as_deref() == Some(param)
            }
        }
    }
}

/// Escapes a string for a reason text: control characters become visible escapes.
pub(crate) fn shown(raw: &str) -> String {
    raw.escape_debug().to_string()
}

/// Checks and normalises `raw`; the error is the tail of a sentence that starts with the target.
pub(crate) fn parse(raw: &str, syntax: Syntax) -> Result<Target, String> {
    check_text(raw)?;
    let reader = match syntax {
        Syntax::PytestNodeId => "pytest",
        Syntax::FilePath => "a tool",
    };
    if raw.starts_with('-') {
        return Err(format!(
            "starts with `-`, so {reader} would read it as an option"
        ));
    }
    if raw.starts_with('@') {
        return Err(format!(
            "starts with `@`, so {reader} would read it as a file of arguments"
        ));
    }
    if raw.starts_with('~') {
        return Err(
            "starts with `~`, which is not expanded: targets are paths relative to the root"
                .to_owned(),
        );
    }
    let (path, names, param) = match syntax {
        Syntax::FilePath => (raw, Vec::new(), None),
        Syntax::PytestNodeId => split_node_id(raw)?,
    };
    if path.is_empty() {
        return Err("has no path before `::`".to_owned());
    }
    if path.starts_with('/') {
        return Err("is an absolute path; targets are relative to the root".to_owned());
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("looks like a Windows drive path; targets are relative to the root".to_owned());
    }
    let components = normalise(path)?;
    if syntax == Syntax::FilePath && components.is_empty() {
        return Err("names the root itself, not something beneath it".to_owned());
    }
    Ok(Target {
        components,
        names,
        param,
    })
}

/// Checks that a policy's scope path is a plain root-relative path and normalises it.
pub(crate) fn parse_scope(raw: &str) -> Result<Vec<String>, String> {
    if raw.is_empty() {
        return Err("is empty; write `.` for the whole root".to_owned());
    }
    check_text(raw)?;
    if raw.starts_with('/') {
        return Err("is absolute; scopes are relative to the root".to_owned());
    }
    if raw.starts_with('~') {
        return Err(
            "starts with `~`, which is not expanded; scopes are relative to the root".to_owned(),
        );
    }
    if raw.split('/').any(|c| c == "..") {
        return Err("contains `..`; scopes must stay inside the root".to_owned());
    }
    normalise(raw)
}

/// Rejects characters no honest path needs and that hide what a path really is.
fn check_text(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("is empty".to_owned());
    }
    if raw.len() > MAX_TARGET_BYTES {
        return Err(format!("is longer than {MAX_TARGET_BYTES} bytes"));
    }
    if raw.contains('\0') {
        return Err("contains a NUL byte".to_owned());
    }
    if let Some(c) = raw.chars().find(|c| is_deceptive(*c)) {
        let mut msg = String::new();
        let _ = write!(
            msg,
            "contains the invisible or control character U+{:04X}",
            u32::from(c)
        );
        return Err(msg);
    }
    if raw.contains('\u{FFFD}') {
        return Err(
            "contains U+FFFD, the replacement character (was it converted from non-UTF-8 bytes?)"
                .to_owned(),
        );
    }
    if raw.contains('\\') {
        return Err(
            "contains a backslash; use `/` to separate components (a backslash would be part of a file name)"
                .to_owned(),
        );
    }
    Ok(())
}

/// Control characters, and format characters that make text display differently from what it
/// is (bidirectional overrides, zero-width characters, line and paragraph separators).
fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}')
}

/// Splits a collection argument exactly as pytest 8/9 does (`resolve_collection_argument`):
/// first at the first `[`, then the part before it at every `::`. So `::` inside the brackets
/// belongs to the parametrisation, never to the path.
fn split_node_id(raw: &str) -> Result<(&str, Vec<String>, Option<String>), String> {
    let (base, param) = match raw.find('[') {
        Some(at) => (&raw[..at], Some(raw[at..].to_owned())),
        None => (raw, None),
    };
    let mut parts = base.split("::");
    let path = parts.next().unwrap_or_default();
    let names: Vec<String> = parts.map(str::to_owned).collect();
    if param.is_some() && names.is_empty() {
        return Err(
            "has `[` in its path; pytest accepts `[...]` only after a `::` test name".to_owned(),
        );
    }
    if names.iter().any(String::is_empty) {
        return Err("has an empty test name between `::` separators".to_owned());
    }
    Ok((path, names, param))
}

/// Component-wise normalisation: empty and `.` components vanish, `..` removes the previous
/// component. A `..` with nothing to remove leaves the root, which is denied even when later
/// components would come back in: a path that goes out of the root, even transiently, is not
/// honest about where it points.
fn normalise(path: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for (index, comp) in path.split('/').enumerate() {
        match comp {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(format!(
                        "leaves the root through `..` (component {})",
                        index + 1
                    ));
                }
            }
            normal => {
                if normal.len() > MAX_COMPONENT_BYTES {
                    return Err(format!(
                        "has a component longer than {MAX_COMPONENT_BYTES} bytes"
                    ));
                }
                out.push(normal.to_owned());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(raw: &str) -> Result<String, String> {
        parse(raw, Syntax::PytestNodeId).map(|t| t.to_arg())
    }

    #[test]
    fn normalises_component_wise() {
        assert_eq!(node("./runtime//tests/."), Ok("runtime/tests".to_owned()));
        assert_eq!(node("runtime/x/../tests/"), Ok("runtime/tests".to_owned()));
        assert_eq!(node("."), Ok(".".to_owned()));
    }

    #[test]
    fn splits_node_ids_like_pytest() {
        let t = parse(
            "runtime/tests/t.py::C::test[a::b/../../x]",
            Syntax::PytestNodeId,
        )
        .unwrap();
        assert_eq!(t.components, ["runtime", "tests", "t.py"]);
        assert_eq!(t.names, ["C", "test"]);
        assert_eq!(t.param.as_deref(), Some("[a::b/../../x]"));
        assert!(node("runtime/tests/t[1].py").is_err());
        assert!(node("::test").is_err());
        assert!(node("a.py::::b").is_err());
    }

    #[test]
    fn transient_escape_is_denied() {
        assert!(node("runtime/../../main/runtime/tests").is_err());
        assert!(node("..").is_err());
    }

    #[test]
    fn within_is_component_wise_and_respects_names() {
        let outer = parse("runtime/tests", Syntax::PytestNodeId).unwrap();
        let inner = parse("runtime/tests/a.py::t[1]", Syntax::PytestNodeId).unwrap();
        let sibling = parse("runtime/testsX/a.py", Syntax::PytestNodeId).unwrap();
        assert!(inner.is_within(&outer));
        assert!(!sibling.is_within(&outer));
        let test = parse("runtime/tests/a.py::t", Syntax::PytestNodeId).unwrap();
        assert!(inner.is_within(&test));
        let other = parse("runtime/tests/a.py::u", Syntax::PytestNodeId).unwrap();
        assert!(!other.is_within(&test));
        let one = parse("runtime/tests/a.py::t[1]", Syntax::PytestNodeId).unwrap();
        let two = parse("runtime/tests/a.py::t[2]", Syntax::PytestNodeId).unwrap();
        assert!(!two.is_within(&one));
        assert!(one.is_within(&one));
    }
}
