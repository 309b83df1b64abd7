//! Child processes: the cargo that runs us, readable command lines for messages, and running a
//! command that must succeed.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::Command;

use camino::Utf8Path;

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
