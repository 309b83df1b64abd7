//! Child processes: the cargo that runs us, and readable command lines for messages.

use std::ffi::OsString;
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
