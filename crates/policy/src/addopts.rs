//! A project's `addopts`, read from the configuration file pytest would use, split the way pytest
//! splits them, and judged item by item by the same allowlist as the agent's own arguments.
//!
//! The configuration file is in the agent's hands, so its `addopts` cannot be trusted wholesale;
//! dropping them all (`-o addopts=`) silently changes what the suite means (deselections such as
//! `-m "not slow"`, `--strict-markers`, `--doctest-modules`). So every item is checked: allowed
//! items are kept and passed to pytest explicitly (after `-o addopts=`, so what runs is exactly
//! what was checked), items that only write files or use the cache are dropped with a note, and
//! anything else refuses the run with a reason naming the file and the item.

use camino::{Utf8Path, Utf8PathBuf};

use crate::args::{self, Options, Outcome};
use crate::inifile::{self, read_bounded};
use crate::target::shown;

/// What a run takes from the project's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProjectOptions {
    /// The configuration file pytest reads (absolute, inside the root), if there is one.
    pub(crate) config_file: Option<Utf8PathBuf>,
    /// Where `addopts` was read: the file (root-relative) and the table or section.
    pub(crate) source: Option<String>,
    /// The items kept, in order.
    pub(crate) kept: Vec<String>,
    /// The items left out, each with why.
    pub(crate) dropped: Vec<(String, String)>,
}

/// A configuration value as pytest reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IniValue {
    /// INI mode: a string (pytest splits `args` values with `shlex.split`).
    Text(String),
    /// A list (TOML); in TOML mode the only form pytest accepts for `args` values.
    List(Vec<String>),
}

/// Where a key was found: the table or section, and whether it is in native TOML mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) section: &'static str,
    pub(crate) native_toml: bool,
    pub(crate) value: IniValue,
}

/// Reads `key` from the pytest configuration in `path` (a file called one of pytest's names).
/// `Ok(None)` when the file sets no such key.
pub(crate) fn read_key(path: &Utf8Path, key: &str) -> Result<Option<Found>, String> {
    let name = path.file_name().unwrap_or_default();
    let text = read_bounded(path).ok_or_else(|| {
        "cannot be read as UTF-8 text of at most 1 MiB (pytest would stop with an error too)"
            .to_owned()
    })?;
    match name {
        "pytest.toml" | ".pytest.toml" => {
            let document = toml_document(&text)?;
            Ok(toml_key(document.get("pytest"), key, "[pytest]", true)?)
        }
        "pyproject.toml" => {
            let document = toml_document(&text)?;
            let Some(toml::Value::Table(pytest)) = document
                .get("tool")
                .and_then(|tool| tool.as_table())
                .and_then(|tool| tool.get("pytest"))
            else {
                return Ok(None);
            };
            // pytest 9: native `[tool.pytest]` keys, or the older `[tool.pytest.ini_options]`.
            let native = pytest.keys().any(|k| k != "ini_options");
            if native {
                let table = toml::Value::Table(pytest.clone());
                toml_key(Some(&table), key, "[tool.pytest]", true)
            } else {
                toml_key(
                    pytest.get("ini_options"),
                    key,
                    "[tool.pytest.ini_options]",
                    false,
                )
            }
        }
        "setup.cfg" => Ok(ini_key(&text, "tool:pytest", key).map(|value| Found {
            section: "[tool:pytest]",
            native_toml: false,
            value: IniValue::Text(value),
        })),
        _ => Ok(ini_key(&text, "pytest", key).map(|value| Found {
            section: "[pytest]",
            native_toml: false,
            value: IniValue::Text(value),
        })),
    }
}

fn toml_document(text: &str) -> Result<toml::Table, String> {
    toml::from_str::<toml::Table>(text)
        .map_err(|err| format!("is not valid TOML ({})", err.message()))
}

fn toml_key(
    table: Option<&toml::Value>,
    key: &str,
    section: &'static str,
    native_toml: bool,
) -> Result<Option<Found>, String> {
    let Some(value) = table.and_then(|t| t.as_table()).and_then(|t| t.get(key)) else {
        return Ok(None);
    };
    let value = match value {
        toml::Value::Array(items) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    toml::Value::String(s) => list.push(s.clone()),
                    other => {
                        return Err(format!(
                            "has `{key}` in {section} with an item that is not a string (`{other}`)"
                        ));
                    }
                }
            }
            IniValue::List(list)
        }
        toml::Value::String(s) if !native_toml => IniValue::Text(s.clone()),
        _ if native_toml => {
            return Err(format!(
                "has `{key}` in {section} that is not a list of strings (pytest stops with an error)"
            ));
        }
        // INI mode turns any other scalar into its text, as pytest's `make_scalar` does.
        other => IniValue::Text(other.to_string()),
    };
    Ok(Some(Found {
        section,
        native_toml,
        value,
    }))
}

/// The value of `key` in `section` of an INI document, read as `iniconfig` (pytest's reader)
/// reads it: `name = value` or `name: value`, continuation lines (indented) joined with a line
/// break, whole-line comments (`#`, `;`) skipped, inline comments kept as part of the value.
pub(crate) fn ini_key(text: &str, section: &str, key: &str) -> Option<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut current: Option<&str> = None;
    let mut value: Option<Vec<&str>> = None;
    for raw in text.split_inclusive(inifile::python_line_break) {
        let line = raw.trim_end_matches(inifile::python_line_break);
        let stripped = line.trim_start_matches(inifile::python_space);
        if stripped.starts_with(['#', ';']) {
            continue;
        }
        let line = line.trim_end_matches(inifile::python_space);
        if line.is_empty() {
            continue;
        }
        let first = line.chars().next().unwrap_or(' ');
        if first == '[' {
            let cut = line.split('#').next().unwrap_or("");
            let cut = cut.split(';').next().unwrap_or("").trim_end();
            if let Some(name) = cut.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
                if value.is_some() {
                    break;
                }
                current = Some(name);
                continue;
            }
            // Not a section header: iniconfig reads it as a continuation.
            if let Some(parts) = value.as_mut() {
                parts.push(line.trim());
            }
            continue;
        }
        if inifile::python_space(first) {
            if let Some(parts) = value.as_mut() {
                parts.push(line.trim_matches(inifile::python_space));
            }
            continue;
        }
        if value.is_some() {
            // The next key of the section: the value is complete.
            break;
        }
        if current != Some(section) {
            continue;
        }
        let split = match line.split_once('=') {
            Some((name, rest)) if !name.contains(':') => Some((name, rest)),
            _ => line.split_once(':'),
        };
        if let Some((name, rest)) = split
            && name.trim() == key
        {
            let rest = rest.trim();
            value = Some(if rest.is_empty() {
                Vec::new()
            } else {
                vec![rest]
            });
        }
    }
    value.map(|parts| parts.join("\n"))
}

/// Python's `shlex.split` (POSIX mode, no comments): words split at blanks, quotes removed,
/// backslash escapes honoured. `None` where Python raises an error (an open quote, a trailing
/// backslash).
pub(crate) fn shlex_split(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                word.push(chars.next()?);
                in_word = true;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => {
                            let next = chars.next()?;
                            if !matches!(next, '"' | '\\') {
                                word.push('\\');
                            }
                            word.push(next);
                        }
                        c => word.push(c),
                    }
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// A key's value as a list of arguments, the way pytest reads an `args` option.
pub(crate) fn as_args(found: &Found) -> Option<Vec<String>> {
    match &found.value {
        IniValue::Text(text) => shlex_split(text),
        IniValue::List(list) => Some(list.clone()),
    }
}

/// The project's configuration for a run of `targets` under `root`, with its `addopts` judged.
/// The error is the reason of a denial: it names the file, the item and what would allow it.
pub(crate) fn inspect(
    root: &Utf8Path,
    targets: &[String],
    options: &Options,
) -> Result<ProjectOptions, String> {
    let Some(config_file) = inifile::locate(root, targets) else {
        return Ok(ProjectOptions::default());
    };
    let shown_file = config_file
        .strip_prefix(root)
        .map_or_else(|_| config_file.to_string(), Utf8Path::to_string);
    let unusable = |why: String| {
        format!(
            "the project's pytest configuration `{shown_file}` {why}; fix the file so that pytest can read it"
        )
    };
    let Some(found) = read_key(&config_file, "addopts").map_err(unusable)? else {
        return Ok(ProjectOptions {
            config_file: Some(config_file),
            ..ProjectOptions::default()
        });
    };
    let source = format!("`{shown_file}` {}", found.section);
    let Some(items) = as_args(&found) else {
        return Err(unusable(format!(
            "has `addopts` in {} that does not split into arguments (an open quote or a trailing backslash)",
            found.section
        )));
    };
    let scanned = args::scan(&items, options, "addopts item")
        .map_err(|why| format!("the project's `addopts` in {source}: {why}"))?;
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for item in scanned {
        let words = &items[item.span.clone()];
        match item.outcome {
            Outcome::Allowed => kept.extend(words.iter().cloned()),
            Outcome::Droppable { why, .. } => dropped.push((words.join(" "), why)),
            Outcome::Denied(why) => {
                return Err(format!(
                    "the project's `addopts` in {source} has `{}`, which Warden cannot pass on: {why}. Remove it from `addopts` (Warden passes every other item on, so the suite means what it means under bare pytest)",
                    shown(&words.join(" "))
                ));
            }
        }
    }
    Ok(ProjectOptions {
        config_file: Some(config_file),
        source: Some(source),
        kept,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_matches_python() {
        let split = |s: &str| shlex_split(s).unwrap();
        assert_eq!(split(r#"-m "not stress" -q"#), ["-m", "not stress", "-q"]);
        assert_eq!(
            split("-m 'not slow'\n  --strict-markers"),
            ["-m", "not slow", "--strict-markers"]
        );
        assert_eq!(split(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(split(r#""a\"b\n""#), [r#"a"b\n"#]);
        assert_eq!(split(r"a\ b \x"), ["a b", "x"]);
        assert_eq!(split(r#""""#), [""]);
        assert_eq!(split("  "), Vec::<String>::new());
        assert_eq!(shlex_split("'open"), None);
        assert_eq!(shlex_split("end\\"), None);
    }

    #[test]
    fn ini_values_read_like_iniconfig() {
        let text = "[metadata]\naddopts = wrong\n[pytest]\n# a comment\naddopts = -ra\n    -m 'not slow' # kept\n\n  --tb=short\nxfail_strict: true\n";
        assert_eq!(
            ini_key(text, "pytest", "addopts").as_deref(),
            Some("-ra\n-m 'not slow' # kept\n--tb=short")
        );
        assert_eq!(
            ini_key(text, "pytest", "xfail_strict").as_deref(),
            Some("true")
        );
        assert_eq!(ini_key(text, "pytest", "testpaths"), None);
        assert_eq!(
            ini_key("[pytest]\naddopts =\n", "pytest", "addopts").as_deref(),
            Some("")
        );
        assert_eq!(
            ini_key("[tool:pytest]\naddopts=-q\n", "tool:pytest", "addopts").as_deref(),
            Some("-q")
        );
    }
}
