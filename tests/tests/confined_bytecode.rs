//! Where a run's Python finds and writes bytecode, end to end. Under the default sandbox the run
//! cannot write Warden's cache, so bytecode of files outside the root is read from beside their
//! source (read-only to the run), while everything in the root stays out of the tree's
//! `__pycache__`: bytecode planted there is never run, whatever path the module was imported
//! by. With or without the sandbox, nothing is ever written beside a source outside the root.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use std::fs;
use std::path::Path;
use std::process::Command;

use warden_e2e::{Fixture, failures, python_with_pytest, verify_json};

/// Writes, at the bytecode path Python (without a prefix) uses for `source`, the compiled
/// `contents` marked "unchecked" (PEP 552), so Python runs it whatever `source` says.
fn plant_bytecode(source: &Path, contents: &str) {
    let decoy = source.with_file_name("decoy_source.py");
    fs::write(&decoy, contents).unwrap();
    let script = "import importlib.util, py_compile, sys\n\
                  target = importlib.util.cache_from_source(sys.argv[2])\n\
                  py_compile.compile(sys.argv[1], cfile=target, doraise=True,\n\
                  invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n";
    let out = Command::new(python_with_pytest())
        .args(["-I", "-c", script])
        .arg(&decoy)
        .arg(source)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    fs::remove_file(&decoy).unwrap();
}

#[test]
fn planted_bytecode_in_the_root_is_ignored_even_through_a_path_outside_it() {
    let fixture = Fixture::empty();
    let module = fixture.write("lib/helper.py", "VALUE = 1\n");
    plant_bytecode(&module, "VALUE = 2\n");
    // The same directory by a name outside the root: its `__pycache__` is the root's.
    let alias = fixture.outside().join("alias");
    std::os::unix::fs::symlink(fixture.root().join("lib"), &alias).unwrap();
    fixture.write(
        "runtime/tests/test_plant.py",
        &format!(
            "import importlib, sys\n\
             def test_by_the_roots_name():\n\
             \x20   sys.path.insert(0, 'lib')\n\
             \x20   try:\n\
             \x20       assert importlib.import_module('helper').VALUE == 1\n\
             \x20   finally:\n\
             \x20       sys.path.remove('lib'); sys.modules.pop('helper', None)\n\
             def test_by_a_name_outside_the_root():\n\
             \x20   sys.path.insert(0, {alias:?})\n\
             \x20   try:\n\
             \x20       assert importlib.import_module('helper').VALUE == 1\n\
             \x20   finally:\n\
             \x20       sys.path.remove({alias:?}); sys.modules.pop('helper', None)\n",
            alias = alias.to_str().unwrap()
        ),
    );
    fixture.allow_sandbox("read", &alias);
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    assert_eq!(out.code, Some(0), "{:?}\n{}", failures(&doc), out.stderr);
    assert_eq!(doc["counts"]["passed"], 2);
    assert_eq!(doc["sandbox"]["enforced"], true, "{}", doc["sandbox"]);
}

#[test]
fn bytecode_of_a_module_outside_the_root_is_read_from_beside_it_and_never_written() {
    let fixture = Fixture::empty();
    let outside = fixture.outside().join("site");
    fs::create_dir_all(&outside).unwrap();
    let module = outside.join("outside_helper.py");
    fs::write(&module, "VALUE = 1\n").unwrap();
    // Bytecode beside a source outside the root is what Python itself would run there; it is
    // read-only to the run, so reading it is as safe as reading the source.
    plant_bytecode(&module, "VALUE = 3\n");
    let other = outside.join("uncompiled.py");
    fs::write(&other, "VALUE = 4\n").unwrap();
    fixture.write(
        "runtime/tests/test_outside.py",
        &format!(
            "import subprocess, sys\n\
             sys.path.insert(0, {outside:?})\n\
             import outside_helper, uncompiled\n\
             def test_bytecode_beside_the_source_is_used():\n\
             \x20   assert outside_helper.VALUE == 3\n\
             def test_a_module_without_bytecode_still_imports():\n\
             \x20   assert uncompiled.VALUE == 4\n\
             def test_a_python_the_test_starts_reads_it_too():\n\
             \x20   code = 'import sys; sys.path.insert(0, {outside:?}); import outside_helper; print(outside_helper.VALUE)'\n\
             \x20   out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)\n\
             \x20   assert out.stdout.strip() == '3'\n",
            outside = outside.to_str().unwrap()
        ),
    );
    fixture.allow_sandbox("read", &outside);
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    assert_eq!(out.code, Some(0), "{:?}\n{}", failures(&doc), out.stderr);
    assert_eq!(doc["counts"]["passed"], 3);
    // The run could not write beside the source outside the root.
    let pycache: Vec<String> = fs::read_dir(outside.join("__pycache__"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(pycache.len(), 1, "{pycache:?}");
    assert!(pycache[0].starts_with("outside_helper."), "{pycache:?}");
}

#[test]
fn without_the_sandbox_nothing_is_written_beside_a_source_outside_the_root() {
    let fixture = Fixture::empty();
    let outside = fixture.outside().join("site");
    fs::create_dir_all(&outside).unwrap();
    let stale = outside.join("stale_helper.py");
    fs::write(&stale, "VALUE = 1\n").unwrap();
    // Timestamp-checked bytecode of another source: stale for `stale_helper.py`, which Python
    // would recompile and write back in its place.
    let decoy = outside.join("decoy.py");
    fs::write(&decoy, "VALUE = 22\n").unwrap();
    let script = "import importlib.util, py_compile, sys\n\
                  py_compile.compile(sys.argv[1], cfile=importlib.util.cache_from_source(sys.argv[2]), doraise=True)\n";
    let out = Command::new(python_with_pytest())
        .args(["-I", "-c", script])
        .arg(&decoy)
        .arg(&stale)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    fs::remove_file(&decoy).unwrap();
    let pycache = outside.join("__pycache__");
    let listing = || {
        let mut names: Vec<(String, Vec<u8>)> = fs::read_dir(&pycache)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        names.sort();
        names
    };
    let before = listing();
    fs::write(outside.join("fresh_helper.py"), "VALUE = 2\n").unwrap();
    fixture.write(
        "runtime/tests/test_outside.py",
        &format!(
            "import sys\n\
             sys.path.insert(0, {outside:?})\n\
             import stale_helper, fresh_helper\n\
             def test_sources_win():\n\
             \x20   assert (stale_helper.VALUE, fresh_helper.VALUE) == (1, 2)\n",
            outside = outside.to_str().unwrap()
        ),
    );
    fixture.write(
        "warden.toml",
        "version = 1\nextends = \"builtin\"\n[sandbox]\nmode = \"off\"\n",
    );
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    assert_eq!(out.code, Some(0), "{:?}\n{}", failures(&doc), out.stderr);
    assert!(doc["sandbox"].is_null(), "{}", doc["sandbox"]);
    // The stale file was recompiled in memory (or into Warden's cache), not rewritten, and
    // no bytecode was added beside the new source.
    assert_eq!(listing(), before);
}

#[test]
fn pytest_reads_its_fresh_rewritten_bytecode_of_a_plugin_outside_the_root_from_beside_it() {
    let fixture = Fixture::empty();
    let outside = fixture.outside().join("plugins");
    fs::create_dir_all(&outside).unwrap();
    let plugin = outside.join("outside_plugin.py");
    fs::write(&plugin, "VALUE = 1\n").unwrap();
    // pytest's own cache entry for the plugin, as bare pytest leaves it beside the source:
    // fresh for this source (its hash), but compiled from `VALUE = 5`, so the run shows
    // which one it used.
    let script = "import importlib.util, marshal, sys\n\
                  from pathlib import Path\n\
                  from _pytest.assertion.rewrite import PYC_TAIL\n\
                  source = Path(sys.argv[1])\n\
                  code = compile('VALUE = 5\\n', str(source), 'exec')\n\
                  header = importlib.util.MAGIC_NUMBER + b'\\x03\\x00\\x00\\x00' + importlib.util.source_hash(source.read_bytes())[:8]\n\
                  (source.parent / '__pycache__').mkdir(exist_ok=True)\n\
                  (source.parent / '__pycache__' / (source.stem + PYC_TAIL)).write_bytes(header + marshal.dumps(code))\n";
    let out = Command::new(python_with_pytest())
        .args(["-c", script])
        .arg(&plugin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    fixture.write(
        "runtime/tests/conftest.py",
        &format!(
            "import sys\nsys.path.insert(0, {outside:?})\npytest_plugins = ['outside_plugin']\n",
            outside = outside.to_str().unwrap()
        ),
    );
    fixture.write(
        "runtime/tests/test_plugin.py",
        "import outside_plugin\n\
         def test_the_plugin_came_from_pytests_cache_beside_it():\n\
         \x20   assert outside_plugin.VALUE == 5\n",
    );
    fixture.allow_sandbox("read", &outside);
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let doc = out.json();
    assert_eq!(out.code, Some(0), "{:?}\n{}", failures(&doc), out.stderr);
    assert_eq!(doc["counts"]["passed"], 1);
    assert_eq!(doc["sandbox"]["enforced"], true, "{}", doc["sandbox"]);
}
