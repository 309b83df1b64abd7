//! Property tests: whatever the path, an allowed target never resolves outside its scope.

mod common;

use std::cell::Cell;
use std::fs;

use common::{World, links_beneath, path_part, real_location};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use warden_policy::{Authorized, Policy, ToolRequest, Verdict};

/// A tree with links in every direction: inside the scope, to the sibling, out of the root,
/// loops, and a clean directory with a loop inside the scope.
fn world() -> World {
    let w = World::new();
    w.link("runtime/tests/in", "sub");
    w.link("runtime/tests/sub/up", "..");
    w.link("runtime/tests/bad/out", "{outside}");
    w.link("runtime/tests/sib", "../testsX");
    w.file("runtime/tests/side/test_s.py");
    w.link("runtime/tests/side/to_sibling", "../../testsX");
    w.file("runtime/tests/clean/test_c.py");
    w.link("runtime/tests/clean/self", ".");
    w.link("runtime/tests/clean/inner", "../sub/test_b.py");
    w.link("runtime/out", "{outside}");
    w.link("a", "runtime/tests");
    w.link("loop", "loop");
    w.link("src/found", "../docs/00_foundations");
    w.link("src/gov", "{outside}/../root/docs/01_governance");
    w.link("src/out", "{outside}");
    w.link("src/dangling.md", "../docs/01_governance/new.md");
    w
}

const PARTS: &[&str] = &[
    "a",
    "..",
    ".",
    "",
    "runtime",
    "tests",
    "testsX",
    "in",
    "sub",
    "up",
    "bad",
    "out",
    "sib",
    "clean",
    "side",
    "to_sibling",
    "self",
    "inner",
    "loop",
    "src",
    "found",
    "gov",
    "docs",
    "00_foundations",
    "01_governance",
    "dangling.md",
    "test_a.py",
    "test_b.py",
    "secret.py",
    "new.py",
    "root",
];

/// Where paths start: uniform random components would almost never reach the interesting links.
const BASES: &[&str] = &[
    "",
    "runtime",
    "runtime/tests",
    "runtime/tests/in",
    "runtime/tests/sub",
    "runtime/tests/sub/up",
    "runtime/tests/bad",
    "runtime/tests/sib",
    "runtime/tests/side",
    "runtime/tests/clean",
    "runtime/tests/clean/self",
    "runtime/testsX",
    "runtime/out",
    "a",
    "src",
    "src/found",
    "src/gov",
    "src/out",
    "docs",
];

fn relative_path() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::sample::select(BASES),
        prop::collection::vec(prop::sample::select(PARTS), 0..5),
        prop::option::of(prop::sample::select(
            &["::test_x", "::T::t[a::b/../..]", "::t[1]"][..],
        )),
    )
        .prop_map(|(dot, base, parts, suffix)| {
            let mut s = if dot { "./".to_owned() } else { String::new() };
            s.push_str(base);
            for part in parts {
                s.push('/');
                s.push_str(part);
            }
            s.push_str(suffix.unwrap_or(""));
            s
        })
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// Fails the test with proptest's minimised counterexample.
fn check<T: std::fmt::Debug>(result: Result<(), proptest::test_runner::TestError<T>>) {
    if let Err(err) = result {
        panic!("{err}");
    }
}

/// Checks `property` on every generated target the built-in policy allows in `w` (asked as
/// `request` makes it), and fails unless enough were allowed for the property to mean much.
fn each_allowed(
    w: &World,
    request: impl Fn(&str) -> ToolRequest,
    property: impl Fn(&str, &Authorized) -> Result<(), TestCaseError>,
) {
    let allowed = Cell::new(0_usize);
    check(runner().run(&relative_path(), |target| {
        if let Verdict::Allowed(a) = Policy::builtin().authorize(&w.root, &request(&target)) {
            allowed.set(allowed.get() + 1);
            property(&target, &a)?;
        }
        Ok(())
    }));
    assert!(
        allowed.get() > 50,
        "too few allowed cases ({}) for the property to mean much",
        allowed.get()
    );
}

#[test]
fn allowed_pytest_targets_stay_in_scope() {
    // One tree for all cases: deciding never changes it.
    let w = world();
    let scope = fs::canonicalize(w.path("runtime/tests")).unwrap();
    let pytest = |target: &str| ToolRequest::pytest_run(target, Vec::<String>::new());
    each_allowed(&w, pytest, |target, a| {
        prop_assert_eq!(a.targets().len(), 1);
        let normalised = &a.targets()[0];
        let path = path_part(normalised);
        prop_assert!(
            !path
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty())
                || path == ".",
            "not normalised: {}",
            normalised
        );
        let real = real_location(&w.path(path)).expect("resolves");
        prop_assert!(
            real.starts_with(&scope),
            "{} -> {} escapes {}",
            target,
            real.display(),
            scope.display()
        );
        if real.is_dir() {
            for (link, to) in links_beneath(&real) {
                let to = to.unwrap_or_else(|| {
                    panic!("{} beneath {} does not resolve", link.display(), target)
                });
                prop_assert!(
                    to.starts_with(&scope),
                    "{} beneath {} leads to {}",
                    link.display(),
                    target,
                    to.display()
                );
            }
        }
        Ok(())
    });
}

#[test]
fn allowed_writes_stay_in_the_root_and_off_protected_surfaces() {
    let w = world();
    let root = w.root_path.clone();
    let protected = [
        fs::canonicalize(w.path("docs/00_foundations")).unwrap(),
        fs::canonicalize(w.path("docs/01_governance")).unwrap(),
    ];
    each_allowed(
        &w,
        |t: &str| ToolRequest::fs_write(t),
        |target, a| {
            let real = real_location(&w.path(&a.targets()[0])).expect("resolves");
            prop_assert!(real.starts_with(&root), "{} -> {}", target, real.display());
            for p in &protected {
                prop_assert!(
                    !real.starts_with(p),
                    "{} -> {} is protected",
                    target,
                    real.display()
                );
            }
            Ok(())
        },
    );
}

#[test]
fn any_target_gets_a_reasoned_decision() {
    let w = World::new();
    let strategy = (
        any::<String>(),
        prop::collection::vec(any::<String>(), 0..4),
    );
    check(runner().run(&strategy, |(target, args)| {
        let verdict = Policy::builtin().authorize(
            &w.root,
            &ToolRequest::pytest_run(target.as_str(), args.clone()),
        );
        prop_assert!(!verdict.decision().reason.is_empty());
        if let Verdict::Allowed(a) = verdict {
            prop_assert!(
                !target.starts_with('-') && !target.starts_with('@') && !target.contains('\0')
            );
            prop_assert!(!target.starts_with('/'));
            let real = real_location(&w.path(path_part(&a.targets()[0]))).expect("resolves");
            prop_assert!(real.starts_with(w.path("runtime/tests")), "{}", target);
        }
        Ok(())
    }));
}
