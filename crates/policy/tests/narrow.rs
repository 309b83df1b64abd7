//! Narrowing an authorisation to the node ids of a rerun.

mod common;

use common::World;
use warden_policy::{Authorized, Policy, ToolRequest, Verdict};

fn authorize(world: &World, target: &str, args: &[&str]) -> Authorized {
    match Policy::builtin().authorize(
        &world.root,
        &ToolRequest::pytest_run(target, args.iter().copied()),
    ) {
        Verdict::Allowed(a) => a,
        Verdict::Denied(d) => panic!("denied: {}", d.reason),
    }
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn narrows_to_node_ids_inside_the_target() {
    let world = World::new();
    let full = authorize(&world, "runtime/tests", &["-x", "-q"]);
    let rerun = full
        .narrow(&ids(&[
            "runtime/tests/test_a.py::test_x",
            "./runtime/tests/sub/test_b.py::TestB::test_y[a::b]",
            "runtime/tests/test_a.py::test_x",
        ]))
        .unwrap();
    assert_eq!(
        rerun.targets(),
        [
            "runtime/tests/test_a.py::test_x",
            "runtime/tests/sub/test_b.py::TestB::test_y[a::b]"
        ]
    );
    assert_eq!(rerun.extra_args(), ["-x", "-q"]);
    assert_eq!(rerun.decision(), full.decision());
    assert_eq!(rerun.limits(), full.limits());
    assert_eq!(rerun.root(), full.root());
    assert_eq!((rerun.tool(), rerun.action()), ("pytest", "run"));
    // Narrowing again stays within the original target.
    let again = rerun
        .narrow(&ids(&["runtime/tests/test_a.py::test_x"]))
        .unwrap();
    assert_eq!(again.targets(), ["runtime/tests/test_a.py::test_x"]);
}

#[test]
fn denies_ids_outside_the_target_naming_them() {
    let world = World::new();
    world.link("runtime/tests/sub/evil", "{outside}");
    let file = authorize(&world, "runtime/tests/test_a.py", &[]);
    let cases: &[(&str, &str)] = &[
        (
            "runtime/testsX/test_x.py::test_x",
            "rerun of `runtime/testsX/test_x.py::test_x` denied",
        ),
        (
            "runtime/tests/sub/test_b.py::test_y",
            "not within the authorised target `runtime/tests/test_a.py`",
        ),
        ("runtime/tests/../../../etc/x.py::t", "leaves the root"),
        (
            "runtime/tests/sub/evil/secret.py::test_secret",
            "outside the root",
        ),
        ("-p", "option"),
        ("/etc/passwd::x", "absolute"),
    ];
    for (id, fragment) in cases {
        let denied = file.narrow(&ids(&[*id])).unwrap_err();
        assert!(!denied.allowed);
        assert!(denied.reason.contains(fragment), "{id}: {}", denied.reason);
    }
    // One bad id spoils the whole rerun.
    let mixed = file.narrow(&ids(&[
        "runtime/tests/test_a.py::t",
        "runtime/testsX/test_x.py::t",
    ]));
    assert!(
        mixed
            .unwrap_err()
            .reason
            .contains("runtime/testsX/test_x.py::t")
    );
    assert!(
        file.narrow(&[])
            .unwrap_err()
            .reason
            .contains("at least one node id")
    );
}

#[test]
fn node_id_targets_only_narrow_to_themselves() {
    let world = World::new();
    let test = authorize(&world, "runtime/tests/test_a.py::test_x", &[]);
    assert!(
        test.narrow(&ids(&["runtime/tests/test_a.py::test_x[1]"]))
            .is_ok()
    );
    assert!(
        test.narrow(&ids(&["runtime/tests/test_a.py::test_x"]))
            .is_ok()
    );
    assert!(
        test.narrow(&ids(&["runtime/tests/test_a.py::test_other"]))
            .is_err()
    );
    assert!(test.narrow(&ids(&["runtime/tests/test_a.py"])).is_err());
    let one = authorize(&world, "runtime/tests/test_a.py::test_x[1]", &[]);
    assert!(
        one.narrow(&ids(&["runtime/tests/test_a.py::test_x[2]"]))
            .is_err()
    );
}

#[test]
fn only_pytest_runs_narrow() {
    let world = World::new();
    let write = match Policy::builtin().authorize(&world.root, &ToolRequest::fs_write("src/x.py")) {
        Verdict::Allowed(a) => a,
        Verdict::Denied(d) => panic!("{}", d.reason),
    };
    assert_eq!((write.tool(), write.action()), ("fs", "write"));
    let denied = write.narrow(&ids(&["src/x.py"])).unwrap_err();
    assert!(
        denied.reason.contains("only a pytest run"),
        "{}",
        denied.reason
    );
}

#[test]
fn narrowing_rechecks_the_file_system() {
    let world = World::new();
    let full = authorize(&world, "runtime/tests", &[]);
    // The tree changes after the decision: a rerun cannot follow a new link out.
    world.link("runtime/tests/late", "{outside}");
    let denied = full
        .narrow(&ids(&["runtime/tests/late/secret.py::test_secret"]))
        .unwrap_err();
    assert!(
        denied.reason.contains("outside the root"),
        "{}",
        denied.reason
    );
}
