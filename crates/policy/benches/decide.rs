//! Decisions per second: the built-in policy deciding a mix of allowed and denied requests
//! against a real directory tree (targets are resolved on the file system, symlinks included,
//! and directory targets are searched for symlinks leading out of scope).
//!
//! `cargo bench -p warden-policy --bench decide`

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_policy::{Policy, Root, ToolRequest};

/// A project laid out as the default policy expects: 20 test modules and a package of 5 more
/// under `runtime/tests`, sources, the protected documents, and a symlink that leads out of
/// the test tree.
fn tree(dir: &Path) -> std::io::Result<()> {
    let tests = dir.join("runtime/tests");
    std::fs::create_dir_all(tests.join("pkg"))?;
    for i in 0..20 {
        std::fs::write(
            tests.join(format!("test_mod_{i:02}.py")),
            "def test_x():\n    pass\n",
        )?;
    }
    for i in 0..5 {
        std::fs::write(
            tests.join(format!("pkg/test_sub_{i}.py")),
            "def test_y():\n    pass\n",
        )?;
    }
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("src/calc.py"),
        "def add(a, b):\n    return a + b\n",
    )?;
    std::fs::create_dir_all(dir.join("docs/00_foundations"))?;
    std::fs::write(dir.join("docs/00_foundations/charter.md"), "# Charter\n")?;
    std::os::unix::fs::symlink(dir.join("src"), dir.join("runtime/escape"))?;
    Ok(())
}

/// Requests with the decision each must get: half allowed, half denied, for different reasons.
fn requests() -> Vec<(ToolRequest, bool)> {
    let none = Vec::<String>::new;
    vec![
        (ToolRequest::pytest_run("runtime/tests", ["-x", "-q"]), true),
        (
            ToolRequest::pytest_run("runtime/tests/test_mod_07.py", none()),
            true,
        ),
        (
            ToolRequest::pytest_run("runtime/tests/pkg/test_sub_3.py::test_y[a b]", ["-k", "y"]),
            true,
        ),
        (
            ToolRequest::pytest_run("runtime/tests/pkg", ["--maxfail=2"]),
            true,
        ),
        (ToolRequest::fs_write("src/calc.py"), true),
        (ToolRequest::fs_write("src/new_module.py"), true),
        (ToolRequest::pytest_run("runtime/testsX", none()), false),
        (
            ToolRequest::pytest_run("runtime/tests/../../elsewhere", none()),
            false,
        ),
        (ToolRequest::pytest_run("runtime/escape", none()), false),
        (
            ToolRequest::pytest_run("runtime/tests", ["-p", "evil"]),
            false,
        ),
        (
            ToolRequest::fs_write("docs/00_foundations/charter.md"),
            false,
        ),
        (
            ToolRequest::new("shell", "exec", Some("runtime/tests".into())),
            false,
        ),
    ]
}

fn decide(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
    tree(dir.path()).unwrap_or_else(|e| panic!("the benchmark tree: {e}"));
    let root = Root::new(dir.path()).unwrap_or_else(|e| panic!("the root: {e}"));
    let policy = Policy::builtin();
    let requests = requests();
    for (request, allowed) in &requests {
        let decision = policy.decide(&root, request);
        assert_eq!(
            decision.allowed, *allowed,
            "{request:?}: {}",
            decision.reason
        );
    }

    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(requests.len() as u64));
    group.bench_function("decide_mixed", |b| {
        b.iter(|| {
            for (request, _) in &requests {
                black_box(policy.decide(&root, black_box(request)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
