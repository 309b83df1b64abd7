//! Child processes: the cargo that runs us, readable command lines for messages, and running a
//! command that must succeed.

use std::ffi::OsString;
use std::io::{self, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::Message;

/// A `cargo` command in the workspace root, using the same cargo binary (and so the same
/// toolchain) that runs xtask: cargo sets `CARGO` for the programs it runs.
pub(crate) fn cargo(root: &Utf8Path) -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(program);
    command.current_dir(root);
    command
}

/// `command` as a person would type it: program file name, then the arguments, with any
/// environment variables the command sets in front.
pub(crate) fn describe(command: &Command) -> String {
    let mut words: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| {
            Some(format!(
                "{}={}",
                key.to_string_lossy(),
                quote(&value?.to_string_lossy())
            ))
        })
        .collect();
    let program = Path::new(command.get_program());
    words.push(
        program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned(),
    );
    words.extend(command.get_args().map(|arg| quote(&arg.to_string_lossy())));
    words.join(" ")
}

/// How a command that had to succeed did not; each case names the command as [`describe`]
/// writes it.
#[derive(Debug)]
pub(crate) enum Unsuccessful {
    /// It could not be started.
    Spawn { command: String, source: io::Error },
    /// It ran and exited unsuccessfully, with this status.
    Failed { command: String, status: String },
}

/// Runs `command` to completion, its output going where ours goes; `Ok` when it succeeded.
pub(crate) fn succeed(command: &mut Command) -> Result<(), Unsuccessful> {
    let described = describe(command);
    let status = command.status().map_err(|source| Unsuccessful::Spawn {
        command: described.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Unsuccessful::Failed {
            command: described,
            status: status.to_string(),
        })
    }
}

/// Why building `warden` failed: the command as [`describe`] writes it, and what went wrong.
#[derive(Debug)]
pub(crate) struct BuildFailed {
    pub(crate) command: String,
    pub(crate) problem: String,
}

/// Builds the `warden` binary (in release mode when `release`) and returns its path as cargo
/// reports it, so the target directory may be anywhere.
pub(crate) fn build_warden(root: &Utf8Path, release: bool) -> Result<Utf8PathBuf, BuildFailed> {
    let mut command = cargo(root);
    command.arg("build");
    if release {
        command.arg("--release");
    }
    command
        .args([
            "--package",
            "warden-cli",
            "--bin",
            "warden",
            "--quiet",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped());
    let described = describe(&command);
    let failed = |problem: String| BuildFailed {
        command: described.clone(),
        problem,
    };
    println!("==> building warden: {described}");
    let mut child = command
        .spawn()
        .map_err(|e| failed(format!("could not start: {e}")))?;
    let mut binary = None;
    if let Some(stdout) = child.stdout.take() {
        for message in Message::parse_stream(BufReader::new(stdout)) {
            let message = message.map_err(|e| failed(format!("unreadable output: {e}")))?;
            let Message::CompilerArtifact(artifact) = message else {
                continue;
            };
            // Say what is being built as it is (a cold build takes minutes; quiet is not calm).
            if !artifact.fresh {
                println!("    compiled {}", artifact.target.name);
            }
            if artifact.target.name == "warden"
                && let Some(executable) = artifact.executable
            {
                binary = Some(executable);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| failed(format!("could not wait for it: {e}")))?;
    if !status.success() {
        return Err(failed(format!("exited with {status}")));
    }
    binary.ok_or_else(|| failed("reported no `warden` executable".to_owned()))
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_env_program_and_quoted_args() {
        let mut command = Command::new("/usr/bin/cargo");
        command
            .args(["doc", "--no-deps", "a b", "it's"])
            .env("RUSTDOCFLAGS", "-D warnings");
        assert_eq!(
            describe(&command),
            r"RUSTDOCFLAGS='-D warnings' cargo doc --no-deps 'a b' 'it'\''s'"
        );
    }
}
