//! Table-driven adversarial tests of the built-in policy, on real directories with real symlinks.

mod common;

use common::World;
use warden_policy::{Policy, ToolRequest, Verdict};

/// One case: how to set the world up, the request, and what must come out.
struct Case {
    name: &'static str,
    links: &'static [(&'static str, &'static str)],
    request: ToolRequest,
    allowed: bool,
    /// A fragment the reason must contain.
    reason: &'static str,
    /// The rules that must decide it.
    rules: &'static [&'static str],
    /// The normalised target when allowed.
    resolved: Option<&'static str>,
}

fn pytest(target: &str) -> ToolRequest {
    ToolRequest::pytest_run(target, Vec::<String>::new())
}

fn allow(name: &'static str, request: ToolRequest, resolved: &'static str) -> Case {
    let rules: &'static [&'static str] = if request.tool == "pytest" {
        &["pytest-runtime-tests"]
    } else {
        &["fs-write-root"]
    };
    Case {
        name,
        links: &[],
        request,
        allowed: true,
        reason: "allowed by rule",
        rules,
        resolved: Some(resolved),
    }
}

fn deny(name: &'static str, request: ToolRequest, reason: &'static str) -> Case {
    Case {
        name,
        links: &[],
        request,
        allowed: false,
        reason,
        rules: &[],
        resolved: None,
    }
}

impl Case {
    fn with_links(mut self, links: &'static [(&'static str, &'static str)]) -> Case {
        self.links = links;
        self
    }
    fn by(mut self, rules: &'static [&'static str]) -> Case {
        self.rules = rules;
        self
    }
}

fn run(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let world = World::new();
        for (at, to) in case.links {
            world.link(at, to);
        }
        let verdict = Policy::builtin().authorize(&world.root, &case.request);
        let decision = verdict.decision().clone();
        let mut problems = Vec::new();
        if decision.allowed != case.allowed {
            problems.push(format!("allowed = {}", decision.allowed));
        }
        if !decision.reason.contains(case.reason) {
            problems.push("reason lacks the expected fragment".to_owned());
        }
        if decision.matched_rules != case.rules {
            problems.push(format!("rules = {:?}", decision.matched_rules));
        }
        match (&verdict, case.resolved) {
            (Verdict::Allowed(a), Some(want)) if a.targets() != [want] => {
                problems.push(format!("targets = {:?}", a.targets()));
            }
            _ => {}
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {} (reason: {:?}, want fragment {:?})",
                case.name,
                problems.join("; "),
                decision.reason,
                case.reason
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn pytest_targets() {
    run(vec![
        allow("the scope itself", pytest("runtime/tests"), "runtime/tests"),
        allow("dot prefix", pytest("./runtime/tests"), "runtime/tests"),
        allow("double slash", pytest("runtime//tests"), "runtime/tests"),
        allow("trailing dot", pytest("runtime/tests/."), "runtime/tests"),
        allow("trailing slash", pytest("runtime/tests/"), "runtime/tests"),
        allow(
            "inner dot-dot",
            pytest("runtime/tests/sub/../test_a.py"),
            "runtime/tests/test_a.py",
        ),
        allow(
            "file not yet there",
            pytest("runtime/tests/test_new.py"),
            "runtime/tests/test_new.py",
        ),
        allow(
            "node id",
            pytest("runtime/tests/test_a.py::test_x"),
            "runtime/tests/test_a.py::test_x",
        ),
        allow(
            "class and parametrised node id",
            pytest("runtime/tests/test_a.py::TestA::test_x[1-2]"),
            "runtime/tests/test_a.py::TestA::test_x[1-2]",
        ),
        allow(
            "`::` and `..` inside the brackets",
            pytest("./runtime/tests/test_a.py::test_x[a::b/../../../etc]"),
            "runtime/tests/test_a.py::test_x[a::b/../../../etc]",
        ),
        deny(
            "sibling with shared prefix",
            pytest("runtime/testsX"),
            "outside every scope",
        ),
        deny(
            "file in sibling",
            pytest("runtime/testsX/test_x.py"),
            "default deny",
        ),
        deny(
            "node id in sibling",
            pytest("runtime/testsX/test_x.py::test_x[runtime/tests]"),
            "outside every scope",
        ),
        deny("parent of scope", pytest("runtime"), "outside every scope"),
        deny("the root", pytest("."), "outside every scope"),
        deny(
            "out of the scope, still in the root",
            pytest("runtime/tests/../../etc"),
            "outside every scope",
        ),
        deny(
            "leaves the root",
            pytest("runtime/tests/../../../etc"),
            "leaves the root through `..`",
        ),
        deny(
            "out and back in",
            pytest("runtime/../../root/runtime/tests"),
            "leaves the root",
        ),
        deny("parent", pytest("../etc/passwd"), "leaves the root"),
        deny("absolute", pytest("/etc/passwd"), "absolute"),
        deny("absolute root", pytest("/"), "absolute"),
        deny("empty", pytest(""), "is empty"),
        deny("NUL", pytest("runtime/tests\0/x"), "NUL"),
        deny("newline", pytest("runtime/tests\n-p evil"), "U+000A"),
        deny(
            "right-to-left override",
            pytest("runtime/tests/\u{202E}yp.a_tset"),
            "U+202E",
        ),
        deny(
            "zero-width space",
            pytest("runtime/tests\u{200B}"),
            "U+200B",
        ),
        deny(
            "replacement character",
            pytest("runtime/tests/\u{FFFD}.py"),
            "U+FFFD",
        ),
        deny("option", pytest("-x"), "option"),
        deny("long option", pytest("--rootdir=/"), "option"),
        deny("plugin option", pytest("-pno:cacheprovider"), "option"),
        deny("argument file", pytest("@args.txt"), "file of arguments"),
        deny("home", pytest("~/runtime/tests"), "`~`"),
        deny("bare tilde", pytest("~"), "`~`"),
        deny("backslash", pytest("runtime\\tests"), "backslash"),
        deny(
            "windows escape",
            pytest("runtime\\..\\..\\etc"),
            "backslash",
        ),
        deny("drive", pytest("C:/runtime/tests"), "Windows drive"),
        deny(
            "bracket in path",
            pytest("runtime/tests/test[1].py"),
            "`[` in its path",
        ),
        deny("no path", pytest("::test_x"), "no path"),
        deny(
            "empty name",
            pytest("runtime/tests/test_a.py::::x"),
            "empty test name",
        ),
        deny(
            "`::` in brackets cannot hide the path",
            pytest("runtime/testsX/t.py::x[::runtime/tests]"),
            "outside every scope",
        ),
        deny("long", pytest(&"a/".repeat(3000)), "longer than"),
        deny(
            "no target",
            ToolRequest::new("pytest", "run", None),
            "needs a target",
        ),
    ]);
}

#[test]
fn pytest_symlinks() {
    run(vec![
        deny(
            "link escaping the root",
            pytest("runtime/tests/evil"),
            "outside the root",
        )
        .with_links(&[("runtime/tests/evil", "{outside}")]),
        deny(
            "file through a link escaping the root",
            pytest("runtime/tests/evil/secret.py"),
            "through symlink `runtime/tests/evil`",
        )
        .with_links(&[("runtime/tests/evil", "{outside}")]),
        deny(
            "directory containing a link out of the root",
            pytest("runtime/tests"),
            "`runtime/tests/evil` beneath target",
        )
        .with_links(&[("runtime/tests/evil", "{outside}")]),
        deny(
            "relative link out of the root",
            pytest("runtime/tests"),
            "outside the root",
        )
        .with_links(&[("runtime/tests/up", "../../..")]),
        deny(
            "link to the sibling",
            pytest("runtime/tests/sib/test_x.py"),
            "outside scope `runtime/tests`",
        )
        .with_links(&[("runtime/tests/sib", "../testsX")]),
        deny(
            "directory containing a link to the sibling",
            pytest("runtime/tests"),
            "`runtime/tests/sib` beneath `runtime/tests` is a symlink to `runtime/testsX`",
        )
        .with_links(&[("runtime/tests/sib", "../testsX")]),
        deny(
            "nested link out",
            pytest("runtime/tests"),
            "`runtime/tests/sub/deep/out` beneath target",
        )
        .with_links(&[("runtime/tests/sub/deep/out", "{outside}")]),
        deny("file link out", pytest("runtime/tests"), "outside the root")
            .with_links(&[("runtime/tests/test_evil.py", "{outside}/secret.py")]),
        deny(
            "dangling link out",
            pytest("runtime/tests"),
            "outside the root",
        )
        .with_links(&[("runtime/tests/dangling", "{outside}/nothing/here")]),
        deny("link loop", pytest("runtime/tests"), "symlink loop").with_links(&[
            ("runtime/tests/loop1", "loop2"),
            ("runtime/tests/loop2", "loop1"),
        ]),
        deny(
            "link loop as target",
            pytest("runtime/tests/self/x.py"),
            "symlink loop",
        )
        .with_links(&[("runtime/tests/self", "self")]),
        allow(
            "directory loop inside the scope",
            pytest("runtime/tests"),
            "runtime/tests",
        )
        .with_links(&[("runtime/tests/sub/up", ".."), ("runtime/tests/here", ".")]),
        allow(
            "link inside the scope",
            pytest("runtime/tests/alias/test_b.py"),
            "runtime/tests/alias/test_b.py",
        )
        .with_links(&[("runtime/tests/alias", "sub")]),
        deny(
            "linked directory inside the scope hides a link out",
            pytest("runtime/tests/sub"),
            "`runtime/tests/other/out` beneath target",
        )
        .with_links(&[
            ("runtime/tests/sub/l", "../other"),
            ("runtime/tests/other/out", "{outside}"),
        ]),
        deny(
            "scope itself links out",
            pytest("runtime/tests"),
            "outside the root",
        )
        .with_links(&[("runtime/tests", "{outside}")]),
        allow(
            "scope links elsewhere inside the root",
            pytest("runtime/tests/test_x.py"),
            "runtime/tests/test_x.py",
        )
        .with_links(&[("runtime/tests", "testsX")]),
        deny(
            "written outside the scope but resolving inside",
            pytest("runtime/alias/test_a.py"),
            "outside every scope",
        )
        .with_links(&[("runtime/alias", "tests")]),
        deny(
            "link into src",
            pytest("runtime/tests/src/calc.py"),
            "through symlink `runtime/tests/src`",
        )
        .with_links(&[("runtime/tests/src", "../../src")]),
        deny(
            "absolute link to the root",
            pytest("runtime/tests/r/runtime/testsX"),
            "outside scope",
        )
        .with_links(&[("runtime/tests/r", "{outside}/../root")]),
    ]);
}

#[test]
fn pytest_args() {
    let with = |args: &[&str]| ToolRequest::pytest_run("runtime/tests", args.iter().copied());
    let ok = |name: &'static str, args: &[&str]| allow(name, with(args), "runtime/tests");
    let no =
        |name: &'static str, args: &[&str], reason: &'static str| deny(name, with(args), reason);
    run(vec![
        ok("-x", &["-x"]),
        ok("--exitfirst", &["--exitfirst"]),
        ok("--maxfail=N", &["--maxfail=3"]),
        ok("--maxfail N", &["--maxfail", "3"]),
        ok("-k EXPR", &["-k", "test_add and not (slow or db)"]),
        ok("-kEXPR", &["-ktest_add"]),
        ok("-k keyword argument", &["-k", "test_x[1-2] or name=='x'"]),
        ok("-m EXPR", &["-m", "not slow"]),
        ok("-q", &["-q"]),
        ok("-v", &["-v"]),
        ok("-vv", &["-vv"]),
        ok("cluster", &["-xvsl"]),
        ok("cluster ending in -k", &["-xk", "test_a"]),
        ok("--tb=short", &["--tb=short"]),
        ok("--tb line", &["--tb", "line"]),
        ok("-rA", &["-rA"]),
        ok("-r fE", &["-r", "fE"]),
        ok("--durations", &["--durations=5", "--durations-min=0.5"]),
        ok("strictness", &["--strict-markers", "--strict-config"]),
        ok("capture", &["-s", "--capture=no"]),
        ok("colour", &["--color=no"]),
        ok("collect only", &["--co"]),
        ok(
            "several",
            &["-x", "-q", "--maxfail", "1", "-k", "add", "--tb=no"],
        ),
        ok("-p no:NAME", &["-p", "no:cacheprovider"]),
        ok("-pno:NAME", &["-pno:logging"]),
        ok("-p no:NAME in a cluster", &["-xp", "no:logging"]),
        no("-p", &["-p", "evil"], "`-p evil` is not allowed"),
        no("-p in a cluster", &["-xp", "foo"], "`-p foo`"),
        no("-p attached in a cluster", &["-xpfoo"], "`-p foo`"),
        // Warden reads its own plugin's records, not pytest's JUnit report.
        ok("-p no:junitxml", &["-p", "no:junitxml"]),
        no("-p no:reports", &["-p", "no:reports"], "depends on"),
        no("-p no:terminal", &["-pno:terminal"], "depends on"),
        no(
            "-p xdist without opting in",
            &["-p", "xdist"],
            "allow_options",
        ),
        no("-c", &["-c", "evil.ini"], "configuration file"),
        no("-c in a cluster", &["-qc/dev/null"], "`-c`"),
        no(
            "--config-file",
            &["--config-file=evil.ini"],
            "configuration file",
        ),
        no("--rootdir=/", &["--rootdir=/"], "`--rootdir`"),
        no("--rootdir /", &["--rootdir", "/"], "`--rootdir`"),
        no("--confcutdir", &["--confcutdir=/"], "conftest.py"),
        no("--noconftest", &["--noconftest"], "conftest.py"),
        no("--basetemp", &["--basetemp=/tmp/x"], "temporary files"),
        no("--junitxml", &["--junitxml=out.xml"], "report file"),
        no("--junit-xml", &["--junit-xml", "out.xml"], "report file"),
        no("-o", &["-o", "addopts=-p evil"], "overrides configuration"),
        no(
            "-o attached",
            &["-oaddopts=-pevil"],
            "overrides configuration",
        ),
        no(
            "--override-ini",
            &["--override-ini=python_files=*.py"],
            "overrides configuration",
        ),
        no("--pyargs", &["--pyargs"], "module names"),
        no("@file", &["@args.txt"], "read more arguments"),
        no(
            "@file as a value",
            &["-k", "@args.txt"],
            "read more arguments",
        ),
        ok("--import-mode", &["--import-mode=importlib"]),
        no(
            "--import-mode=other",
            &["--import-mode=sideways"],
            "not one of",
        ),
        no("--debug", &["--debug"], "log file"),
        no("--debug=FILE", &["--debug=/tmp/x.log"], "log file"),
        no("--pdb", &["--pdb"], "debugger"),
        no("--trace", &["--trace"], "debugger"),
        no("--pdbcls", &["--pdbcls=evil:Debugger"], "arbitrary code"),
        no("--cov", &["--cov=src"], "coverage"),
        no("--cov-report", &["--cov-report", "html"], "coverage"),
        no("--log-file", &["--log-file=/tmp/x"], "log file"),
        no("--log-file-level", &["--log-file-level=DEBUG"], "log file"),
        no("--resultlog", &["--resultlog=x"], "report file"),
        ok("-W built-in category", &["-W", "error::DeprecationWarning"]),
        ok("-Werror", &["-Werror"]),
        ok("--pythonwarnings", &["--pythonwarnings=ignore"]),
        no(
            "-W category by module path",
            &["-W", "error::evil.Warning"],
            "import that module",
        ),
        no("-W with a bad action", &["-W", "explode"], "not one of"),
        no("--lf", &["--lf"], "cache"),
        no("--ff", &["--failed-first"], "cache"),
        no("--sw", &["--sw"], "cache"),
        no("--cache-clear", &["--cache-clear"], "cache"),
        no(
            "--continue-on-collection-errors",
            &["--continue-on-collection-errors"],
            "collection errors",
        ),
        ok(
            "--ignore only removes tests",
            &["--ignore=runtime/tests/test_a.py"],
        ),
        ok("--deselect only removes tests", &["--deselect", "x"]),
        no(
            "--collect-in-virtualenv",
            &["--collect-in-virtualenv"],
            "virtual environments",
        ),
        no("--pastebin", &["--pastebin=all"], "pastebin"),
        ok("--doctest-modules", &["--doctest-modules"]),
        no(
            "--doctest-ignore-import-errors",
            &["--doctest-ignore-import-errors"],
            "hiding errors",
        ),
        no("--help", &["--help"], "instead of running"),
        no("-h", &["-h"], "instead of running"),
        no("-n (xdist)", &["-n", "4"], "worker processes"),
        no(
            "-n names the key",
            &["-n", "4"],
            "allow_options = [\"xdist\"]",
        ),
        no(
            "--tx (xdist, remote)",
            &["--tx", "popen//python=x"],
            "other hosts",
        ),
        no("positional target", &["runtime/testsX"], "another target"),
        no("positional escape", &["../../etc"], "another target"),
        no("positional after a flag", &["-x", "src"], "another target"),
        no("--", &["--"], "ends the options"),
        no("-- then a target", &["--", "src"], "ends the options"),
        no("lone dash", &["-"], "lone `-`"),
        no("empty", &[""], "is empty"),
        no("NUL in -k", &["-k", "x\0y"], "NUL"),
        no("newline in -k", &["-k", "a\nb"], "U+000A"),
        no("shell in -k", &["-k", "x; rm -rf /"], "`;`"),
        no("command substitution in -k", &["-k", "$(id)"], "`$`"),
        no(
            "-k that is an option",
            &["-k", "--rootdir=/"],
            "starts with `-`",
        ),
        no("-k that is -p", &["-k", "-pevil"], "starts with `-`"),
        no("-k without value", &["-k"], "needs a value"),
        no("blank -k", &["-k", "  "], "blank"),
        no("--maxfail=0", &["--maxfail=0"], "positive whole number"),
        no("--maxfail=-1", &["--maxfail=-1"], "positive whole number"),
        no("--maxfail=+1", &["--maxfail=+1"], "positive whole number"),
        no(
            "--maxfail=abc",
            &["--maxfail", "abc"],
            "positive whole number",
        ),
        no("--maxfail without value", &["--maxfail"], "needs a value"),
        no("--tb=evil", &["--tb=evil"], "not one of"),
        no("-r with unknown char", &["-rZ"], "report characters"),
        no("flag with a value", &["--exitfirst=yes"], "takes no value"),
        no("unknown long", &["--evil"], "not an option Warden allows"),
        no(
            "abbreviation of a denied option",
            &["--root=/"],
            "not an option Warden allows",
        ),
        no("unknown short", &["-Z"], "`-Z`"),
        no("negative number", &["-1"], "`-1`"),
        no("too many", &["-q"; 65], "too many extra arguments"),
        no("too long", &[&"a".repeat(2000)], "longer than"),
    ]);
}

#[test]
fn fs_write_and_other_tools() {
    let write = ToolRequest::fs_write;
    run(vec![
        allow("source file", write("src/calc.py"), "src/calc.py"),
        allow("new file", write("src/new/mod.py"), "src/new/mod.py"),
        allow("normalised", write("./src//calc.py"), "src/calc.py"),
        allow(
            "shares a prefix with a protected surface",
            write("docs/00_foundationsX/a.md"),
            "docs/00_foundationsX/a.md",
        ),
        allow(
            "docs elsewhere",
            write("docs/02_notes/a.md"),
            "docs/02_notes/a.md",
        ),
        deny(
            "foundations",
            write("docs/00_foundations/charter.md"),
            "protected scope `docs/00_foundations`",
        )
        .by(&["protect-foundations"]),
        deny(
            "governance",
            write("docs/01_governance/new.md"),
            "deny rule wins",
        )
        .by(&["protect-governance"]),
        deny(
            "normalised into a protected surface",
            write("docs/./00_foundations/../00_foundations/x"),
            "protected",
        )
        .by(&["protect-foundations"]),
        deny(
            "the protected directory itself",
            write("docs/00_foundations"),
            "protected",
        )
        .by(&["protect-foundations"]),
        deny(
            "a parent of protected surfaces",
            write("docs"),
            "contains protected scope",
        )
        .by(&["protect-foundations", "protect-governance"]),
        deny(
            "through a link into a protected surface",
            write("src/found/x.md"),
            "resolves to `docs/00_foundations/x.md`",
        )
        .by(&["protect-foundations"])
        .with_links(&[("src/found", "../docs/00_foundations")]),
        deny(
            "dangling link into a protected surface",
            write("src/new.md"),
            "protected",
        )
        .by(&["protect-governance"])
        .with_links(&[("src/new.md", "../docs/01_governance/new.md")]),
        deny(
            "link out of the root",
            write("src/out/x.py"),
            "outside the root",
        )
        .with_links(&[("src/out", "{outside}")]),
        deny(
            "dangling link out of the root",
            write("src/x.py"),
            "outside the root",
        )
        .with_links(&[("src/x.py", "{outside}/new.py")]),
        deny("the policy file", write("warden.toml"), "protected").by(&["protect-warden"]),
        deny("the ledger", write(".warden/ledger.jsonl"), "protected").by(&["protect-warden"]),
        deny("the root itself", write("."), "the root itself"),
        deny("escape", write("../x"), "leaves the root"),
        deny("absolute", write("/tmp/x"), "absolute"),
        deny("option-like", write("-rf"), "option"),
        deny(
            "extra args",
            ToolRequest::pytest_run("src/x", ["-x"]).retool("fs", "write"),
            "takes no extra arguments",
        ),
        deny(
            "unknown tool",
            ToolRequest::new("shell", "exec", Some("ls".into())),
            "not a tool action Warden knows",
        ),
        deny(
            "unknown action",
            ToolRequest::new("pytest", "collect", Some("runtime/tests".into())),
            "not a tool action",
        ),
        deny(
            "tool names are exact",
            ToolRequest::new("PyTest", "run", Some("runtime/tests".into())),
            "not a tool action",
        ),
        deny(
            "fs read",
            ToolRequest::new("fs", "read", Some("src/calc.py".into())),
            "default",
        ),
        deny(
            "no target",
            ToolRequest::new("fs", "write", None),
            "needs a target",
        ),
    ]);
}

trait Retool {
    fn retool(self, tool: &str, action: &str) -> ToolRequest;
}

impl Retool for ToolRequest {
    fn retool(mut self, tool: &str, action: &str) -> ToolRequest {
        tool.clone_into(&mut self.tool);
        action.clone_into(&mut self.action);
        self
    }
}

#[test]
fn json_requests_reject_unknown_keys() {
    let ok: ToolRequest = serde_json::from_str(
        r#"{"tool": "pytest", "action": "run", "args": {"target": "runtime/tests", "extra_args": ["-x"]}}"#,
    )
    .unwrap();
    assert_eq!(ok, ToolRequest::pytest_run("runtime/tests", ["-x"]));
    let minimal: ToolRequest =
        serde_json::from_str(r#"{"tool": "shell", "action": "exec"}"#).unwrap();
    assert_eq!(minimal.args.target, None);
    for bad in [
        r#"{"tool": "pytest", "action": "run", "args": {}, "sudo": true}"#,
        r#"{"tool": "pytest", "action": "run", "args": {"target": "x", "rootdir": "/"}}"#,
        r#"{"tool": "pytest", "args": {}}"#,
        r#"{"tool": "pytest", "action": "run", "args": {"target": 7}}"#,
    ] {
        assert!(serde_json::from_str::<ToolRequest>(bad).is_err(), "{bad}");
    }
}

#[test]
fn decision_record_matches_decision() {
    let world = World::new();
    let decision = world.decide(&pytest("runtime/tests"));
    let record = decision.record();
    assert!(record.allowed);
    assert_eq!(record.reason, decision.reason);
    assert_eq!(record.matched_rules, ["pytest-runtime-tests"]);
}

#[test]
fn walk_is_bounded() {
    let world = World::new();
    // Deeper than the walk's depth bound: the directory target is denied, not half-checked.
    let deep = format!("runtime/tests/{}", "d/".repeat(70));
    world.dir(&deep);
    let decision = world.decide(&pytest("runtime/tests"));
    assert!(!decision.allowed);
    assert!(
        decision.reason.contains("fails closed"),
        "{}",
        decision.reason
    );
    // A file inside is still fine: no walk is needed for it.
    let file = world.decide(&pytest("runtime/tests/test_a.py"));
    assert!(file.allowed, "{}", file.reason);
}
