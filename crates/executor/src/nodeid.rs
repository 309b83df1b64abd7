//! Mapping JUnit `classname`/`name` pairs back to pytest node ids.
//!
//! pytest's JUnit writer "mangles" a node id: the file path becomes a dotted module path and
//! every `::` before the test name becomes a dot (`runtime/tests/test_a.py::TestX::test_y[1]`
//! becomes `classname="runtime.tests.test_a.TestX" name="test_y[1]"`). Dots in directory names
//! and classes look the same, so the mapping is not invertible from the pair alone. Warden asks
//! for the `xunit1` family, whose `file` attribute names the test file, and resolves in order:
//! node ids seen on the `-v` progress lines (mangled the way pytest does and matched exactly),
//! the `file` attribute, then the file system under the root.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Instant;

use camino::Utf8Path;

/// pytest's `mangle_test_address`: the JUnit `(classname, name)` of a node id.
pub(crate) fn mangle(nodeid: &str) -> (String, String) {
    let mut names: Vec<String> = match nodeid.split_once("::") {
        None => vec![nodeid.to_owned()],
        Some((path, tail)) => {
            // The parameter bracket is peeled off the part after the path (paths may
            // contain brackets of their own) and put back onto the last name.
            let (name_part, params) = match tail.split_once('[') {
                Some((names, params)) => (names, Some(params)),
                None => (tail, None),
            };
            let mut names = vec![path.to_owned()];
            names.extend(name_part.split("::").map(str::to_owned));
            if let (Some(params), Some(last)) = (params, names.last_mut()) {
                last.push('[');
                last.push_str(params);
            }
            names
        }
    };
    names[0] = dotted(&names[0]);
    let name = names.pop().unwrap_or_default();
    (names.join("."), name)
}

/// `runtime/tests/test_a.py` as pytest writes it in a classname: `runtime.tests.test_a`.
fn dotted(path: &str) -> String {
    let dotted = path.replace('/', ".");
    match dotted.strip_suffix(".py") {
        Some(stripped) => stripped.to_owned(),
        None => dotted,
    }
}

/// At most this many file-system probes per report: a forged report can name any number of
/// deep classnames, and each probe walks a path.
const MAX_PROBES: usize = 10_000;

/// Probes look for a test file at most this many directories deep (the policy walks no
/// deeper either) and no longer than Linux's `PATH_MAX`.
const MAX_PROBE_DEPTH: usize = 64;
const MAX_PROBE_BYTES: usize = 4096;

/// Resolves JUnit test cases to node ids, in time linear in the classnames and names given
/// it: exact lookups, a bounded number of file-system probes (none after `deadline`), and a
/// linear guess for the rest.
pub(crate) struct NodeIdResolver<'a> {
    known: HashMap<(String, String), &'a str>,
    root: &'a Utf8Path,
    probes: Cell<usize>,
    deadline: Option<Instant>,
}

impl<'a> NodeIdResolver<'a> {
    /// A resolver that knows the node ids the output stream named and can probe `root`.
    pub(crate) fn new(known: impl IntoIterator<Item = &'a str>, root: &'a Utf8Path) -> Self {
        let known = known.into_iter().map(|id| (mangle(id), id)).collect();
        NodeIdResolver {
            known,
            root,
            probes: Cell::new(0),
            deadline: None,
        }
    }

    /// Stops probing the file system at `deadline`; what is left is guessed.
    pub(crate) fn until(self, deadline: Instant) -> Self {
        NodeIdResolver {
            deadline: Some(deadline),
            ..self
        }
    }

    /// The node id of a test case.
    pub(crate) fn resolve(&self, classname: &str, name: &str, file: Option<&str>) -> String {
        if let Some(id) = self.known.get(&(classname.to_owned(), name.to_owned())) {
            return (*id).to_owned();
        }
        if let Some(file) = file
            && let Some(id) = from_file(classname, name, file)
        {
            return id;
        }
        if let Some(id) = self.probe(classname, name) {
            return id;
        }
        tracing::debug!(
            classname,
            name,
            "could not map a JUnit test case to a node id; guessing"
        );
        guess(classname, name)
    }

    /// Whether another probe is allowed (and counts it).
    fn may_probe(&self) -> bool {
        let used = self.probes.get();
        if used >= MAX_PROBES || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        self.probes.set(used + 1);
        true
    }

    /// Finds the longest dotted prefix of the classname that is a test file under the root,
    /// among the first [`MAX_PROBE_DEPTH`] components: the path is built once, and each
    /// candidate is a prefix of it.
    fn probe(&self, classname: &str, name: &str) -> Option<String> {
        // For a collection error the name is the dotted path of the file itself.
        let dotted = if classname.is_empty() {
            name
        } else {
            classname
        };
        let mut path = String::new();
        // Where each candidate ends in `path`, and in `dotted`.
        let mut ends: Vec<(usize, usize)> = Vec::new();
        let mut offset = 0;
        for part in dotted.split('.').take(MAX_PROBE_DEPTH) {
            if path.len() + part.len() + ".py".len() >= MAX_PROBE_BYTES {
                break;
            }
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            offset += part.len();
            ends.push((path.len(), offset));
            offset += 1;
        }
        for &(end, dotted_end) in ends.iter().rev() {
            if !self.may_probe() {
                return None;
            }
            let candidate = format!("{}.py", &path[..end]);
            if !self.root.join(&candidate).is_file() {
                continue;
            }
            let classes = dotted.get(dotted_end + 1..).unwrap_or_default();
            if classname.is_empty() {
                return classes.is_empty().then_some(candidate);
            }
            let mut id = candidate;
            for class in classes.split('.').filter(|c| !c.is_empty()) {
                id.push_str("::");
                id.push_str(class);
            }
            id.push_str("::");
            id.push_str(name);
            return Some(id);
        }
        None
    }
}

/// The node id, if the classname starts with the dotted form of `file`.
fn from_file(classname: &str, name: &str, file: &str) -> Option<String> {
    let module = dotted(file);
    if classname.is_empty() {
        return (name == module).then(|| file.to_owned());
    }
    let classes = if classname == module {
        ""
    } else {
        classname.strip_prefix(&module)?.strip_prefix('.')?
    };
    let mut id = file.to_owned();
    for class in classes.split('.').filter(|c| !c.is_empty()) {
        id.push_str("::");
        id.push_str(class);
    }
    id.push_str("::");
    id.push_str(name);
    Some(id)
}

/// The last resort: trailing components that look like class names (capitalised, as pytest's
/// default `python_classes = Test*` requires) are classes, the rest is the module path.
fn guess(classname: &str, name: &str) -> String {
    if classname.is_empty() {
        return format!("{}.py", name.replace('.', "/"));
    }
    let parts: Vec<&str> = classname.split('.').collect();
    let classes = parts
        .iter()
        .rev()
        .take_while(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
        .count()
        .min(parts.len() - 1);
    let (module, classes) = parts.split_at(parts.len() - classes);
    let mut id = format!("{}.py", module.join("/"));
    for class in classes {
        id.push_str("::");
        id.push_str(class);
    }
    id.push_str("::");
    id.push_str(name);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mangling_matches_pytest() {
        let cases = [
            (
                "runtime/tests/test_a.py::test_x",
                ("runtime.tests.test_a", "test_x"),
            ),
            (
                "runtime/tests/test_a.py::TestO::TestI::test_n",
                ("runtime.tests.test_a.TestO.TestI", "test_n"),
            ),
            ("t/test_a.py::test_p[a b]", ("t.test_a", "test_p[a b]")),
            ("t/test_a.py::test_p[e[f]]", ("t.test_a", "test_p[e[f]]")),
            ("t/test_a.py::test_p[c::d]", ("t.test_a", "test_p[c::d]")),
            ("t/test_a.py::test_p[1.5]", ("t.test_a", "test_p[1.5]")),
            ("runtime/tests/test_imp.py", ("", "runtime.tests.test_imp")),
        ];
        for (id, (classname, name)) in cases {
            assert_eq!(mangle(id), (classname.to_owned(), name.to_owned()), "{id}");
        }
    }

    #[test]
    fn known_ids_win() {
        let known = ["v1.2/test_a.py::test_x", "t/test_b.py::TestC::test_y[x.y]"];
        let r = NodeIdResolver::new(known, Utf8Path::new("/nonexistent"));
        assert_eq!(
            r.resolve("v1.2.test_a", "test_x", None),
            "v1.2/test_a.py::test_x"
        );
        assert_eq!(
            r.resolve("t.test_b.TestC", "test_y[x.y]", Some("t/test_b.py")),
            "t/test_b.py::TestC::test_y[x.y]"
        );
    }

    #[test]
    fn the_file_attribute_resolves_classes_and_collection_errors() {
        let r = NodeIdResolver::new([], Utf8Path::new("/nonexistent"));
        assert_eq!(
            r.resolve("a.b.test_c.TestD.TestE", "test_f[1]", Some("a/b/test_c.py")),
            "a/b/test_c.py::TestD::TestE::test_f[1]"
        );
        assert_eq!(
            r.resolve("a.test_c", "test_f", Some("a/test_c.py")),
            "a/test_c.py::test_f"
        );
        assert_eq!(
            r.resolve("", "a.test_c", Some("a/test_c.py")),
            "a/test_c.py"
        );
        // An inherited test: the file attribute names the base module.
        assert_eq!(
            r.resolve("a.test_c.TestD", "test_f", Some("a/base.py")),
            "a/test_c.py::TestD::test_f"
        );
    }

    #[test]
    fn the_file_system_settles_dotted_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("v1/tests")).unwrap();
        std::fs::write(root.join("v1/tests/test_z.py"), "").unwrap();
        let r = NodeIdResolver::new([], root);
        assert_eq!(
            r.resolve("v1.tests.test_z.TestK", "test_m", None),
            "v1/tests/test_z.py::TestK::test_m"
        );
        assert_eq!(r.resolve("", "v1.tests.test_z", None), "v1/tests/test_z.py");
    }

    proptest! {
        #[test]
        fn known_ids_always_resolve_to_themselves(
            dirs in prop::collection::vec("[a-z][a-z0-9_.]{0,6}", 0..4),
            file in "test_[a-z]{1,6}",
            classes in prop::collection::vec("[A-Z][a-zA-Z]{0,6}", 0..3),
            test in "test_[a-z_]{1,8}",
            param in prop::option::of("[a-z0-9 .:\\[\\]-]{0,10}"),
        ) {
            let mut path = dirs.join("/");
            if !path.is_empty() { path.push('/'); }
            path.push_str(&file);
            path.push_str(".py");
            let mut id = path.clone();
            for c in &classes { id.push_str("::"); id.push_str(c); }
            id.push_str("::");
            id.push_str(&test);
            if let Some(p) = &param { id.push('['); id.push_str(p); id.push(']'); }
            let (classname, name) = mangle(&id);
            let r = NodeIdResolver::new([id.as_str()], Utf8Path::new("/nonexistent"));
            prop_assert_eq!(r.resolve(&classname, &name, Some(&path)), id.clone());
            // Without the stream, the file attribute alone gets it right too.
            let r = NodeIdResolver::new([], Utf8Path::new("/nonexistent"));
            prop_assert_eq!(r.resolve(&classname, &name, Some(&path)), id);
        }
    }

    #[test]
    fn deep_classnames_cost_a_bounded_number_of_probes() {
        // The file is there, 3 directories deep; the forged classnames go 5 000 deep.
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("a/a")).unwrap();
        std::fs::write(root.join("a/a/test_a.py"), "").unwrap();
        let r = NodeIdResolver::new([], root);
        let deep = format!("a.a.test_a.{}", vec!["K"; 5_000].join("."));
        let id = r.resolve(&deep, "test_x", None);
        assert!(id.starts_with("a/a/test_a.py::K::K::"), "{}", &id[..40]);
        assert!(id.ends_with("::K::test_x"));
        assert!(r.probes.get() <= MAX_PROBE_DEPTH);
        // Many of them: the probes stop at their budget and the rest is guessed, linearly.
        for i in 0..1_000 {
            r.resolve(&format!("b{i}.{}", vec!["c"; 5_000].join(".")), "t", None);
        }
        assert_eq!(r.probes.get(), MAX_PROBES);
        assert_eq!(
            r.resolve("v.test_m.TestK", "test_n", None),
            "v/test_m.py::TestK::test_n"
        );
    }

    #[test]
    fn no_probe_after_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("v1")).unwrap();
        std::fs::write(root.join("v1/test_z.py"), "").unwrap();
        let r = NodeIdResolver::new([], root).until(Instant::now());
        // Guessed: `test_z` is taken for a directory's module path, as no probe may settle it.
        assert_eq!(
            r.resolve("v1.test_z", "test_m", None),
            "v1/test_z.py::test_m"
        );
        assert_eq!(r.probes.get(), 0);
    }
}
