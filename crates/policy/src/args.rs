//! The allowlist for pytest's extra arguments.
//!
//! Arguments are read the way pytest's argparse reads them (long options with `=value` or a
//! separate value, clusters of short options such as `-xvs` or `-kEXPR`), so what is checked is
//! what pytest would see. Only options that shape output, selection by expression, or when to
//! stop are allowed; anything that could load code, change the root or configuration, write
//! files, or add targets is denied by name with the reason, and anything unknown is denied.

use crate::target::shown;

/// Most extra arguments in one request.
const MAX_ARGS: usize = 64;
/// Longest extra argument, in bytes.
const MAX_ARG_BYTES: usize = 1024;

/// What an option is to the allowlist.
#[derive(Clone, Copy)]
enum Rule {
    /// Allowed; takes no value.
    Flag,
    /// Allowed; takes one value, which must pass the check.
    Value(fn(&str) -> Result<(), String>),
    /// Denied, for this reason.
    Denied(&'static str),
}

const CODE: &str = "loads a plugin or module by name, which runs arbitrary code";
const PLUGIN: &str = "loads (or with `no:` switches off) a plugin, which runs arbitrary code or removes Warden's own settings";
const CONFIG: &str =
    "reads a different configuration file, which can add options, plugins and paths";
const ROOTDIR: &str = "moves pytest's root directory, which decides where configuration and conftest.py files come from";
const CONFTEST: &str = "changes which conftest.py files are loaded";
const BASETEMP: &str =
    "chooses (and wipes) the directory for temporary files, which may lie outside the root";
const WRITES_REPORT: &str = "writes a report file; Warden captures results itself";
const WRITES_LOG: &str = "writes a log file, possibly outside the root";
const OVERRIDE: &str = "overrides configuration values such as addopts, plugins and test paths";
const PYARGS: &str = "reads targets as importable module names, which can resolve outside the root";
const IMPORT_MODE: &str = "changes how test modules are imported and what lands on sys.path";
const DEBUGGER: &str =
    "starts an interactive debugger, which would wait for input until the timeout";
const WARNINGS: &str =
    "a warning filter names its category by module path, so it can import arbitrary modules";
const CACHE: &str =
    "needs pytest's cache, which Warden disables so runs do not depend on earlier ones";
const COLLECTION_ERRORS: &str =
    "lets a run with collection errors carry on as if they did not matter";
const SELECT_PATHS: &str =
    "selects by paths the policy does not check; narrow the run with the target or `-k` instead";
const PASTEBIN: &str = "sends test output to an external pastebin service";
const DOCTEST: &str = "imports every module under the target (not just tests) or files by pattern";
const NOT_A_RUN: &str = "prints information instead of running the tests";
const COVERAGE: &str = "is a coverage option: it writes data files and reads its own configuration";
const XDIST: &str = "starts worker processes through a plugin Warden does not govern";
const DOUBLE_DASH: &str = "ends the options, so everything after it would be read as targets";

/// Long options, by name without the leading `--`.
fn long(name: &str) -> Option<Rule> {
    Some(match name {
        "exitfirst"
        | "quiet"
        | "verbose"
        | "showlocals"
        | "no-showlocals"
        | "strict-markers"
        | "strict-config"
        | "strict"
        | "runxfail"
        | "no-header"
        | "no-summary"
        | "disable-warnings"
        | "disable-pytest-warnings"
        | "full-trace"
        | "fulltrace"
        | "setup-show"
        | "setupshow"
        | "collect-only"
        | "collectonly"
        | "co" => Rule::Flag,
        "maxfail" => Rule::Value(positive_int),
        "report-chars" => Rule::Value(report_chars),
        "tb" => Rule::Value(|v| choice(v, &["auto", "long", "short", "line", "native", "no"])),
        "durations" => Rule::Value(non_negative_int),
        "durations-min" => Rule::Value(non_negative_decimal),
        "capture" => Rule::Value(|v| choice(v, &["fd", "sys", "no", "tee-sys"])),
        "color" => Rule::Value(|v| choice(v, &["yes", "no", "auto"])),
        "show-capture" => Rule::Value(|v| choice(v, &["no", "stdout", "stderr", "log", "all"])),
        "config-file" | "inifile" => Rule::Denied(CONFIG),
        "rootdir" => Rule::Denied(ROOTDIR),
        "confcutdir" | "noconftest" => Rule::Denied(CONFTEST),
        "basetemp" => Rule::Denied(BASETEMP),
        "junitxml" | "junit-xml" | "junitprefix" | "junit-prefix" | "resultlog" | "result-log"
        | "report-log" => Rule::Denied(WRITES_REPORT),
        "debug" => Rule::Denied(WRITES_LOG),
        "override-ini" => Rule::Denied(OVERRIDE),
        "pyargs" => Rule::Denied(PYARGS),
        "import-mode" => Rule::Denied(IMPORT_MODE),
        "pdb" | "trace" => Rule::Denied(DEBUGGER),
        "pdbcls" => Rule::Denied(CODE),
        "pythonwarnings" => Rule::Denied(WARNINGS),
        "lf"
        | "last-failed"
        | "ff"
        | "failed-first"
        | "nf"
        | "new-first"
        | "sw"
        | "stepwise"
        | "sw-skip"
        | "stepwise-skip"
        | "sw-reset"
        | "stepwise-reset"
        | "lfnf"
        | "last-failed-no-failures"
        | "cache-clear"
        | "cache-show" => Rule::Denied(CACHE),
        "continue-on-collection-errors" => Rule::Denied(COLLECTION_ERRORS),
        "ignore" | "ignore-glob" | "deselect" | "collect-in-virtualenv" => {
            Rule::Denied(SELECT_PATHS)
        }
        "pastebin" => Rule::Denied(PASTEBIN),
        "doctest-modules" | "doctest-glob" => Rule::Denied(DOCTEST),
        "help" | "version" | "markers" | "fixtures" | "funcargs" | "fixtures-per-test"
        | "trace-config" | "traceconfig" | "setup-plan" | "setupplan" | "setup-only"
        | "setuponly" => Rule::Denied(NOT_A_RUN),
        "numprocesses" | "dist" | "maxprocesses" | "tx" => Rule::Denied(XDIST),
        _ if name.starts_with("cov") || name.starts_with("no-cov") => Rule::Denied(COVERAGE),
        _ if name.starts_with("log-file") => Rule::Denied(WRITES_LOG),
        _ => return None,
    })
}

/// Short options, by letter.
fn short(letter: char) -> Option<Rule> {
    Some(match letter {
        'x' | 'q' | 'v' | 'l' | 's' => Rule::Flag,
        'k' | 'm' => Rule::Value(expression),
        'r' => Rule::Value(report_chars),
        'p' => Rule::Denied(PLUGIN),
        'c' => Rule::Denied(CONFIG),
        'o' => Rule::Denied(OVERRIDE),
        'W' => Rule::Denied(WARNINGS),
        'h' | 'V' => Rule::Denied(NOT_A_RUN),
        'n' => Rule::Denied(XDIST),
        _ => return None,
    })
}

/// Checks every extra argument; the error is a full sentence naming the offending argument.
pub(crate) fn check(args: &[String]) -> Result<(), String> {
    if args.len() > MAX_ARGS {
        return Err(format!(
            "too many extra arguments ({}; at most {MAX_ARGS})",
            args.len()
        ));
    }
    for arg in args {
        check_text(arg).map_err(|why| format!("extra argument `{}` {why}", shown(arg)))?;
    }
    let mut index = 0;
    while index < args.len() {
        let arg = args[index].as_str();
        index += 1;
        let denied = |why: &str| {
            Err(format!(
                "extra argument `{}` is not allowed: {why}",
                shown(arg)
            ))
        };
        if arg == "--" {
            return denied(DOUBLE_DASH);
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (body, None),
            };
            let option = format!("--{name}");
            match long(name) {
                Some(Rule::Flag) if inline.is_some() => {
                    return Err(format!(
                        "extra argument `{}`: `{option}` takes no value",
                        shown(arg)
                    ));
                }
                Some(Rule::Flag) => {}
                Some(Rule::Value(check_value)) => {
                    let value = match inline {
                        Some(value) => value,
                        None => take_value(args, &mut index, &option)?,
                    };
                    check_value(value)
                        .map_err(|why| format!("value `{}` of `{option}` {why}", shown(value)))?;
                }
                Some(Rule::Denied(why)) => {
                    return Err(format!(
                        "extra argument `{}` is not allowed: `{option}` {why}",
                        shown(arg)
                    ));
                }
                None => {
                    return Err(format!(
                        "extra argument `{}` is not allowed: `{option}` is not an option Warden allows for pytest",
                        shown(arg)
                    ));
                }
            }
        } else if let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) {
            check_cluster(arg, cluster, args, &mut index)?;
        } else if arg == "-" {
            return denied("a lone `-` is not an option pytest has");
        } else {
            return Err(format!(
                "extra argument `{}` is not allowed: it is not an option, so pytest would run it as another target; put the target in `target`",
                shown(arg)
            ));
        }
    }
    Ok(())
}

/// A cluster of short options after one `-`: flags may be combined (`-xvs`); the first option
/// that takes a value takes the rest of the cluster, or the next argument when nothing is left.
fn check_cluster(
    arg: &str,
    cluster: &str,
    args: &[String],
    index: &mut usize,
) -> Result<(), String> {
    for (at, letter) in cluster.char_indices() {
        let option = format!("-{letter}");
        let within = if cluster.len() > letter.len_utf8() {
            format!(" (in `{}`)", shown(arg))
        } else {
            String::new()
        };
        match short(letter) {
            Some(Rule::Flag) => {}
            Some(Rule::Value(check_value)) => {
                let rest = &cluster[at + letter.len_utf8()..];
                let value = if rest.is_empty() {
                    take_value(args, index, &option)?
                } else {
                    rest
                };
                return check_value(value)
                    .map_err(|why| format!("value `{}` of `{option}` {why}", shown(value)));
            }
            Some(Rule::Denied(why)) => {
                return Err(format!(
                    "extra argument `{option}`{within} is not allowed: it {why}"
                ));
            }
            None => {
                return Err(format!(
                    "extra argument `{}`{within} is not allowed: `{option}` is not an option Warden allows for pytest",
                    shown(&option)
                ));
            }
        }
    }
    Ok(())
}

/// The separate value of an option that takes one.
fn take_value<'a>(args: &'a [String], index: &mut usize, option: &str) -> Result<&'a str, String> {
    match args.get(*index) {
        Some(value) => {
            *index += 1;
            Ok(value)
        }
        None => Err(format!("extra argument `{option}` needs a value")),
    }
}

/// Checks that hold for every argument and value.
fn check_text(arg: &str) -> Result<(), String> {
    if arg.is_empty() {
        return Err("is empty (pytest would read it as the current directory)".to_owned());
    }
    if arg.len() > MAX_ARG_BYTES {
        return Err(format!("is longer than {MAX_ARG_BYTES} bytes"));
    }
    if arg.contains('\0') {
        return Err("contains a NUL byte".to_owned());
    }
    if let Some(c) = arg.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    // pytest expands `@file` anywhere in its argument list, even in an option's value.
    if arg.starts_with('@') {
        return Err(
            "starts with `@`, so pytest would read more arguments from that file".to_owned(),
        );
    }
    Ok(())
}

fn positive_int(value: &str) -> Result<(), String> {
    match value.parse::<u32>() {
        Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("is not a positive whole number".to_owned()),
    }
}

fn non_negative_int(value: &str) -> Result<(), String> {
    match value.parse::<u32>() {
        Ok(_) if value.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("is not a whole number".to_owned()),
    }
}

fn non_negative_decimal(value: &str) -> Result<(), String> {
    let digits_and_point = value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|b| *b == b'.').count() <= 1
        && value.bytes().any(|b| b.is_ascii_digit());
    if digits_and_point && value.len() <= 16 {
        Ok(())
    } else {
        Err("is not a non-negative decimal number".to_owned())
    }
}

fn report_chars(value: &str) -> Result<(), String> {
    const CHARS: &str = "fEsxXpPaAwN";
    if value.is_empty() {
        return Err("is empty".to_owned());
    }
    match value.chars().find(|c| !CHARS.contains(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "has `{c}`, which is not one of pytest's report characters `{CHARS}`"
        )),
    }
}

fn choice(value: &str, choices: &[&str]) -> Result<(), String> {
    if choices.contains(&value) {
        Ok(())
    } else {
        Err(format!("is not one of {}", choices.join(", ")))
    }
}

/// A `-k`/`-m` expression: pytest parses these with its own small grammar (names, `and`, `or`,
/// `not`, parentheses, keyword arguments with quoted values), never with Python's `eval`. Only
/// that grammar's characters are allowed, so nothing shell- or code-like slips through, and a
/// value that starts with `-` is refused because pytest would read it as an option.
fn expression(value: &str) -> Result<(), String> {
    if value.starts_with('-') {
        return Err(
            "starts with `-`, so pytest would read it as an option, not an expression".to_owned(),
        );
    }
    if value.trim().is_empty() {
        return Err("is blank".to_owned());
    }
    let allowed = |c: char| {
        c.is_alphanumeric()
            || c == ' '
            || matches!(
                c,
                '_' | ':' | '+' | '-' | '.' | '[' | ']' | '/' | '(' | ')' | ',' | '=' | '\'' | '"'
            )
    };
    match value.chars().find(|c| !allowed(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "has `{}`, which pytest's expression language does not use",
            c.escape_debug()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(args: &[&str]) -> bool {
        let owned: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        check(&owned).is_ok()
    }

    #[test]
    fn clusters_follow_argparse() {
        assert!(ok(&["-xvs"]));
        assert!(ok(&["-xk", "test_a"]));
        assert!(ok(&["-xktest_a"]));
        assert!(ok(&["-kp"]), "`p` is -k's value here, not -p");
        assert!(!ok(&["-xp", "foo"]));
        assert!(!ok(&["-xk"]), "value missing");
    }

    #[test]
    fn values_are_consumed_and_checked() {
        assert!(ok(&["--maxfail", "2", "-q"]));
        assert!(!ok(&["--maxfail", "0"]));
        assert!(!ok(&["--maxfail", "+2"]));
        assert!(!ok(&["-k", "--rootdir=/"]));
        assert!(!ok(&["-k", "@args.txt"]));
        assert!(ok(&["--durations-min=0.5"]));
        assert!(!ok(&["--durations-min=1e9"]));
    }
}
