//! The sandbox, end to end: real `warden verify` runs of hostile tests, each asserting that a
//! capability is contained (the pytest tests pass only if the sandbox refused them), and the
//! degradation paths.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use warden_e2e::{Fixture, failures, processes_mentioning, run, verify_json, warden_at};

/// A project whose `runtime/tests/test_box.py` is `body`, and the policy `sandbox` (TOML under
/// `[sandbox]`).
fn project(body: &str, sandbox: &str) -> Fixture {
    let fixture = Fixture::empty();
    fixture.write("runtime/tests/test_box.py", body);
    fixture.write(
        "warden.toml",
        &format!("version = 1\nextends = \"builtin\"\n[sandbox]\n{sandbox}\n"),
    );
    fixture
}

#[test]
fn a_test_cannot_read_secrets_write_outside_reach_the_network_or_signal_outside() {
    let fixture = Fixture::empty();
    let secret = fixture.outside().join("secret.txt");
    fs::write(&secret, "hunter2").unwrap();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let tag = format!("warden-sandbox-probe-{}", std::process::id());
    let home_probe = Path::new(&home).join(&tag);
    let tmp_probe = Path::new("/tmp").join(&tag);
    // A process outside the run, which the tests try to kill.
    let mut sentinel = Command::new("sleep")
        .arg("300")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let body = format!(
        r#"
import os, signal, socket, pytest

def test_secret_outside_the_root_is_unreadable():
    with pytest.raises(PermissionError):
        open({secret:?}).read()

def test_home_is_not_writable():
    with pytest.raises(OSError):
        open({home:?}, "w").write("x")

def test_host_tmp_is_not_writable():
    with pytest.raises(OSError):
        open({tmp:?}, "w").write("x")

def test_private_tmpdir_and_project_are_writable(tmp_path):
    (tmp_path / "f").write_text("ok")
    open("runtime/written.txt", "w").write("ok")

def test_only_loopback_exists():
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    c = socket.create_connection(s.getsockname()); a, _ = s.accept()
    c.sendall(b"x"); assert a.recv(1) == b"x"

def test_processes_outside_the_run_cannot_be_signalled():
    with pytest.raises(ProcessLookupError):
        os.kill({pid}, signal.SIGKILL)
    assert os.getppid() == 1

def test_the_ledger_and_bytecode_cache_are_read_only():
    assert os.path.isdir(".warden")
    for path in [".warden/ledger.jsonl", ".warden/pycache/planted.pyc", "warden.toml"]:
        with pytest.raises(OSError):
            open(path, "a").write("x")
"#,
        secret = secret.to_str().unwrap(),
        home = home_probe.to_str().unwrap(),
        tmp = tmp_probe.to_str().unwrap(),
        pid = sentinel.id(),
    );
    fixture.write("runtime/tests/test_box.py", &body);
    fixture.write("warden.toml", "version = 1\nextends = \"builtin\"\n");
    // A first run makes `.warden` (ledger, cache), so the second sees Warden's state.
    let _ = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    let alive = sentinel.try_wait().unwrap().is_none();
    let _ = sentinel.kill();
    let _ = sentinel.wait();
    assert_eq!(
        out.code,
        Some(0),
        "{:?}\n{}\n{}",
        failures(&doc),
        out.stdout,
        out.stderr
    );
    assert_eq!(doc["counts"]["passed"], 7);
    assert!(alive, "the sentinel outside the run was killed");
    assert!(!home_probe.exists() && !tmp_probe.exists());
    let sandbox = &doc["sandbox"];
    assert_eq!(sandbox["enforced"], true, "{sandbox}");
    assert_eq!(sandbox["network"], "loopback");
    assert!(sandbox["landlock_abi"].as_u64().unwrap() >= 1);
    for ns in ["user", "mount", "pid", "net"] {
        assert!(
            sandbox["namespaces"]
                .as_array()
                .unwrap()
                .contains(&ns.into()),
            "{sandbox}"
        );
    }
    // The ledger still verifies: the run could not rewrite it.
    let verified = run(
        warden_at(fixture.root())
            .args(["ledger", "verify"])
            .arg(fixture.ledger()),
        None,
        std::time::Duration::from_secs(60),
    );
    assert_eq!(verified.code, Some(0), "{}", verified.stdout);
}

#[test]
fn a_policy_or_repository_planted_where_none_was_is_removed_after_the_run() {
    // No warden.toml (the built-in policy) and no .git: nothing to bind read-only, so the run
    // can create them; Warden removes them once every process of the run is gone.
    let fixture = Fixture::empty();
    fixture.write(
        "runtime/tests/test_plant.py",
        r#"
import os

def test_plants_a_policy_and_a_repository():
    open("warden.toml", "w").write('version = 1\n[sandbox]\nmode = "off"\n')
    os.makedirs(".git/hooks/deep")
    open(".git/config", "w").write("[core]\n\tfsmonitor = touch /tmp/pwned\n")
    os.chmod(".git/hooks/deep", 0o500)
    os.chmod(".git/hooks", 0o500)
    assert os.path.isfile("warden.toml") and os.path.isfile(".git/config")
"#,
    );
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    assert_eq!(out.code, Some(0), "{:?}\n{}", failures(&doc), out.stderr);
    assert_eq!(doc["counts"]["passed"], 1);
    assert!(!fixture.root().join("warden.toml").exists());
    assert!(!fixture.root().join(".git").exists());
    let removed = doc["sandbox"]["removed"].to_string();
    assert!(
        removed.contains("/warden.toml") && removed.contains("/.git"),
        "{}",
        doc["sandbox"]
    );
    // The next run has the built-in policy again, sandbox on.
    let next = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    assert_eq!(next.json()["sandbox"]["enforced"], true);
}

#[test]
fn every_descendant_dies_with_the_run_whatever_it_did() {
    let marker = format!("warden-escapee-{}", std::process::id());
    let fixture = project(
        &format!(
            r#"
import ctypes, subprocess

def test_leaves_escapees_behind():
    libc = ctypes.CDLL(None)
    # setsid, then a non-dumpable shell with a scrubbed environment that keeps re-forking.
    script = "while :; do (sleep 30; : {marker}) & sleep 0.2; done"
    subprocess.Popen(["setsid", "env", "-i", "sh", "-c", script, "{marker}"])
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0, inherited by the next child
    subprocess.Popen(["sh", "-c", "sleep 300; : {marker}"], start_new_session=True)
"#
        ),
        "",
    );
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let left = processes_mentioning(&marker);
    assert!(
        left.is_empty(),
        "still alive after verify returned: {left:?}"
    );
}

#[test]
fn the_memory_limit_is_enforced_and_named_in_the_retry_context() {
    let fixture = project(
        r#"
def test_memory():
    bytearray(512 * 1024 * 1024)

"#,
        "memory_mb = 256\nprocesses = 32\n",
    );
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(doc["counts"]["failed"], 1, "{:?}", failures(&doc));
    assert_eq!(doc["sandbox"]["memory_bytes"], 256 * 1024 * 1024);
    assert_eq!(doc["sandbox"]["processes"], 32);
    let context = doc["retry_context"]["error_messages"].to_string();
    assert!(context.contains("memory_mb"), "{context}");
}

#[test]
fn the_process_limit_binds_a_run_as_root_too_and_is_named_in_the_retry_context() {
    // RLIMIT_NPROC alone does not bind the host's root (these tests' usual user); the run's
    // PID namespace's pid_max does, at `processes` to `processes + 299`.
    let fixture = project(
        r#"
import subprocess

def test_fork_bomb():
    children = []
    try:
        for _ in range(1000):
            children.append(subprocess.Popen(["sleep", "60"]))
    except BlockingIOError:
        assert len(children) < 32 + 300, len(children)
        raise
    finally:
        for child in children:
            child.kill()
            child.wait()
"#,
        "processes = 32\n",
    );
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(doc["counts"]["failed"], 1, "{:?}", failures(&doc));
    assert_eq!(doc["sandbox"]["processes"], 32, "{}", doc["sandbox"]);
    let context = doc["retry_context"]["error_messages"].to_string();
    assert!(context.contains("[Errno 11]"), "{context}");
    assert!(context.contains("[sandbox] processes"), "{context}");
}

#[test]
fn a_refused_path_gets_a_hint_naming_the_policy_key() {
    let fixture = project(
        "def test_reads_home():\n    open('/etc/../root/.profile-warden-probe', 'w')\n",
        "",
    );
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let context = doc["retry_context"]["error_messages"].to_string();
    assert!(context.contains("[sandbox] write"), "{context}");
}

/// `warden verify` inside a user namespace that may not create user namespaces: the sandbox's
/// user namespace is unavailable, as on a kernel with them disabled.
fn verify_without_user_namespaces(fixture: &Fixture) -> warden_e2e::Run {
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} --json verify runtime/tests --retries 0",
        warden_e2e::warden_bin().display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "sh", "-c", &script])
        .current_dir(fixture.root());
    run(&mut cmd, None, std::time::Duration::from_secs(120))
}

#[test]
fn required_without_user_namespaces_runs_nothing_and_says_what_is_missing() {
    let fixture = project(
        "import pathlib\n\ndef test_runs():\n    pathlib.Path('ran').write_text('x')\n",
        "mode = \"required\"\n",
    );
    let out = verify_without_user_namespaces(&fixture);
    assert_eq!(out.code, Some(5), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert!(!fixture.root().join("ran").exists());
    let text = doc["retry_context"].to_string();
    assert!(text.contains("user namespace"), "{text}");
    assert!(text.contains("best-effort"), "{text}");
}

#[test]
fn best_effort_without_user_namespaces_runs_and_names_what_is_missing() {
    let fixture = project("def test_runs():\n    pass\n", "mode = \"best-effort\"\n");
    let out = verify_without_user_namespaces(&fixture);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["sandbox"]["enforced"], false);
    assert!(
        doc["sandbox"]["missing"]
            .to_string()
            .contains("user namespace"),
        "{}",
        doc["sandbox"]
    );
    assert!(doc["sandbox"]["landlock_abi"].as_u64().unwrap() >= 1);
}
