//! What warden leaks into a run, and what a run can leave to hold warden: descriptors warden
//! inherited, warden's environment through `/proc`, and a ledger lock held when warden is
//! told to stop. Real `warden` binary, real pytest.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use warden_e2e::{Fixture, VERIFY_DEADLINE, python_with_pytest, run, warden_bin};

/// `warden --root ROOT --json verify runtime/tests`, started by `sh` with `redirections`
/// (e.g. `3<file`) applied first, so warden inherits those descriptors without close-on-exec;
/// `prefix` is a command warden runs under (e.g. `setpriv ...`).
fn verify_through_sh(
    root: &Path,
    redirections: &str,
    env: &[(&str, &str)],
    prefix: &[&str],
) -> serde_json::Value {
    // `sh -c 'exec "$0" "$@" REDIRECTIONS' PROGRAM ARGS...`: the first word is the program.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("exec \"$0\" \"$@\" {redirections}"))
        .args(prefix)
        .arg(warden_bin())
        .args(["--root"])
        .arg(root)
        .args(["--json", "verify", "runtime/tests"])
        .env("WARDEN_PYTHON", python_with_pytest())
        .env_remove("RUST_LOG");
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    out.json()
}

/// Whether these tests run as root (whose capabilities would let a test read any process's
/// `/proc` files, so the environment test drops them).
fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|ids| ids.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn all_passed(doc: &serde_json::Value, expected: u64) {
    assert_eq!(doc["status"], "passed", "{doc:#}");
    assert_eq!(doc["counts"]["passed"], expected, "{doc:#}");
}

#[test]
fn descriptors_warden_inherited_never_reach_the_tests() {
    let fixture = Fixture::empty();
    let outside = fixture.outside();
    let secret = outside.join("secret.txt");
    let sink = outside.join("sink.txt");
    fs::write(&secret, "hunter2-on-a-descriptor").unwrap();
    fs::write(&sink, "").unwrap();
    fixture.write(
        "runtime/tests/test_descriptors.py",
        &format!(
            r#"import os

SECRET = {secret:?}
SINK = {sink:?}

def open_descriptors():
    found = {{}}
    for fd in os.listdir("/proc/self/fd"):
        try:
            found[int(fd)] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass
    return found

def test_the_callers_files_are_not_open_here():
    found = open_descriptors()
    assert SECRET not in found.values(), found
    assert SINK not in found.values(), found

def test_descriptors_3_and_4_are_not_the_callers():
    for fd in (3, 4):
        try:
            target = os.readlink("/proc/self/fd/%d" % fd)
        except OSError:
            continue
        assert target not in (SECRET, SINK), (fd, target)
"#,
            secret = secret.to_str().unwrap(),
            sink = sink.to_str().unwrap(),
        ),
    );
    let doc = verify_through_sh(
        fixture.root(),
        &format!("3<'{}' 4>>'{}'", secret.display(), sink.display()),
        &[],
        &[],
    );
    all_passed(&doc, 2);
    assert_eq!(
        fs::read_to_string(&sink).unwrap(),
        "",
        "a test wrote to the caller's file"
    );
}

#[test]
fn tests_cannot_read_wardens_environment() {
    let fixture = Fixture::empty();
    // A process can read the environment of a dumpable process of its own user, and a process
    // with capabilities can read more. So as root, warden (and so its tests, which inherit the
    // bounding set) runs without any capability: the only thing left between a test and
    // warden's environment is then warden being non-dumpable.
    fixture.write(
        "runtime/tests/test_environ.py",
        r#"import os

def ancestors():
    pid, chain = os.getppid(), []
    while pid > 1:
        chain.append(pid)
        with open("/proc/%d/stat" % pid) as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
    return chain

def test_no_ancestor_environment_shows_the_secret():
    chain = ancestors()
    seen = {}
    for pid in chain:
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                seen[pid] = "secret" if b"hunter2-in-the-environment" in f.read() else "readable"
        except OSError as e:
            seen[pid] = "denied: %s" % e.strerror
    assert "secret" not in seen.values(), seen
    # The nearest ancestor is warden, and it was refused, not merely without the secret.
    assert seen[chain[0]].startswith("denied"), seen
"#,
    );
    let prefix: &[&str] = if running_as_root() {
        // Root without capabilities cannot map uid 0 into a user namespace (Linux 5.12 wants
        // CAP_SETFCAP for that), so the sandbox is off here: what this test proves is that
        // warden itself is non-dumpable, with no PID namespace hiding it.
        fixture.write(
            "warden.toml",
            "version = 1\nextends = \"builtin\"\n[sandbox]\nmode = \"off\"\n",
        );
        &["setpriv", "--bounding-set=-all"]
    } else {
        &[]
    };
    let doc = verify_through_sh(
        fixture.root(),
        "",
        &[("API_TOKEN", "hunter2-in-the-environment")],
        prefix,
    );
    all_passed(&doc, 1);
}

#[test]
fn sigterm_ends_warden_at_once_while_it_waits_for_a_held_ledger_lock() {
    let fixture = Fixture::named("passing");
    let ledger = fixture.ledger();
    let mut warden = Command::new(warden_bin());
    warden
        .arg("--root")
        .arg(fixture.root())
        .args(["-vv", "verify", "runtime/tests"])
        .env("WARDEN_PYTHON", python_with_pytest())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = warden.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // Once the policy has allowed the run (the ledger was checked before that), another
    // process takes the ledger's lock and keeps it.
    let mut holder = None;
    let started = Instant::now();
    loop {
        let line = log
            .recv_timeout(VERIFY_DEADLINE.saturating_sub(started.elapsed()))
            .expect("warden never finished its run");
        if holder.is_none() && line.contains("allowed by policy") {
            fs::create_dir_all(ledger.parent().unwrap()).unwrap();
            holder = Some(
                Command::new("flock")
                    .arg("-x")
                    .arg(&ledger)
                    .args(["sleep", "120"])
                    .spawn()
                    .unwrap(),
            );
        }
        if line.contains("verification finished") {
            break;
        }
    }
    // Now warden waits for the lock to append (up to its 10 s deadline).
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(60),
            "warden did not end after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    eprintln!("SIGTERM to exit: {:?}", signalled.elapsed());
    let mut holder = holder.expect("the lock was taken");
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(
        status.code(),
        Some(143),
        "warden must end as interrupted by SIGTERM"
    );
    assert_eq!(
        fs::read_to_string(&ledger).unwrap_or_default(),
        "",
        "an interrupted verification recorded evidence"
    );
}
