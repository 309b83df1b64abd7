//! `warden init`: a first `warden.toml` from what the project declares.

use std::io::Write as _;
use std::process::ExitCode;

use serde::Serialize;
use warden_governance_api::{Policy, Root, Starter};

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::output::{print, print_json};

/// The file `warden init` writes, in the root.
const FILE: &str = "warden.toml";

/// The JSON answer of `warden init`.
#[derive(Debug, Serialize)]
struct InitOutput<'a> {
    /// The file written, or `None` when one existed already.
    written: Option<&'a str>,
    /// The existing file left alone, when there was one.
    exists: Option<&'a str>,
    /// The directories the new policy lets pytest run in.
    test_paths: &'a [String],
    /// Where they came from.
    source: &'a str,
    /// Declared test paths left out, each with why.
    skipped: &'a [String],
}

/// Writes `warden.toml` into the root unless something by that name is there (a file, a
/// directory, a symlink, even a dangling one): exit 0 written, 1 left alone, 2 error.
pub(crate) fn run(global: &GlobalArgs) -> Result<ExitCode, CliError> {
    let root = Root::new(&global.root)?;
    let starter = Starter::for_root(&root);
    let path = root.path().join(FILE);
    // Anything by that name, even a dangling symlink, is left alone (and not followed).
    let present = std::path::Path::new(&path).symlink_metadata().is_ok();
    if !present {
        // The file must load against this root before it is written: a policy `warden init`
        // wrote and the next command refuses would be worse than none.
        Policy::from_toml_str_for(&root, &starter.text)?;
    }
    let created = if present {
        Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
    } else {
        // `create_new` fails on an existing name (a link included) rather than following it.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
    };
    let written = match created {
        Ok(mut file) => {
            file.write_all(starter.text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|source| CliError::Write {
                    path: path.clone().into(),
                    source,
                })?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(source) => {
            return Err(CliError::Write {
                path: path.clone().into(),
                source,
            });
        }
    };
    let output = InitOutput {
        written: written.then_some(path.as_str()),
        exists: (!written).then_some(path.as_str()),
        test_paths: &starter.test_paths,
        source: &starter.source,
        skipped: &starter.skipped,
    };
    if global.json {
        print_json(&output)?;
    } else {
        // Test paths come from the project's files: shown escaped, like everything from it.
        print(&crate::style::escape_lines(&human(&output)))?;
    }
    if !written {
        eprintln!(
            "warden: {path} exists already and was left alone; `warden policy` prints the policy in force"
        );
    }
    Ok(ExitCode::from(if written { 0 } else { 1 }))
}

fn human(output: &InitOutput<'_>) -> String {
    let paths = output
        .test_paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = match (output.written, output.exists) {
        (Some(path), _) => format!(
            "wrote {path}: pytest may run in {paths} (from {}), on top of the built-in rules\n",
            output.source
        ),
        (None, Some(path)) => format!(
            "not written: {path} exists already (it would allow pytest in {paths}, from {})\n",
            output.source
        ),
        (None, None) => String::new(),
    };
    for skipped in output.skipped {
        text.push_str(&format!("left out: {skipped}\n"));
    }
    if output.written.is_some() {
        text.push_str(
            "next: `warden policy` shows the policy in force; `warden verify TARGET` runs tests\n",
        );
    }
    text
}
