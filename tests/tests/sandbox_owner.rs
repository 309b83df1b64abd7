//! Ownership under the sandbox's user namespace: files keep their owners, and a run keeps the
//! reach over its project that the same user has without Warden. As root that includes a
//! project owned by another user (a checkout mounted into a container, an unpacked archive
//! keeping its owner), which root inside a namespace that maps only uid 0 could not write:
//! the helper then maps every id to itself.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use std::fs;
use std::os::unix::fs::MetadataExt;

use warden_e2e::{Fixture, verify_json};

/// An owner no one on the machine is: a uid and gid well away from real accounts.
const STRANGER: u32 = 48_213;

#[test]
fn a_run_writes_its_project_as_the_same_user_can_without_warden_and_owners_are_kept() {
    let fixture = Fixture::empty();
    let root_user = nix::unistd::geteuid().is_root();
    let owner = if root_user {
        STRANGER
    } else {
        nix::unistd::geteuid().as_raw()
    };
    fixture.write(
        "runtime/tests/test_owner.py",
        &format!(
            "import os\n\
             def test_the_project_is_writable_and_keeps_its_owner():\n\
             \x20   assert os.stat('runtime').st_uid == {owner}\n\
             \x20   assert os.access('runtime', os.W_OK)\n\
             \x20   with open('runtime/written.txt', 'w') as f:\n\
             \x20       f.write('ok')\n\
             \x20   os.mkdir('runtime/made')\n"
        ),
    );
    fixture.write("warden.toml", "version = 1\nextends = \"builtin\"\n");
    if root_user {
        // Everything the tests touch belongs to the stranger, mode 0755/0644: only root's
        // capabilities let a root run write there.
        for path in [
            fixture.root().join("runtime"),
            fixture.root().join("runtime/tests"),
            fixture.root().join("runtime/tests/test_owner.py"),
        ] {
            std::os::unix::fs::chown(&path, Some(STRANGER), Some(STRANGER)).unwrap();
        }
    }
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(doc["counts"]["passed"], 1);
    assert_eq!(doc["sandbox"]["enforced"], true, "{}", doc["sandbox"]);
    assert!(
        doc["sandbox"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "user"),
        "{}",
        doc["sandbox"]
    );
    // Written on the host by the user who ran Warden, as without it.
    let written = fs::metadata(fixture.root().join("runtime/written.txt")).unwrap();
    assert_eq!(written.uid(), nix::unistd::geteuid().as_raw());
    assert!(fixture.root().join("runtime/made").is_dir());
}
