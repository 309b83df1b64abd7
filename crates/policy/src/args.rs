//! The allowlist for pytest arguments: the agent's extra arguments and each item of a project's
//! `addopts` alike.
//!
//! Arguments are read the way pytest's argparse reads them (long options with `=value` or a
//! separate value, clusters of short options such as `-xvs` or `-kEXPR`), so what is checked is
//! what pytest would see. Only options that shape output, select or deselect tests, or say when
//! to stop are allowed; anything that could load code, change the root or configuration, write
//! files, or add targets is denied by name with the reason, and anything unknown is denied.
//! A few denied options can be allowed by a policy by name ([`OptIn`], the `[pytest]`
//! `allow_options` key), and a few are safe to leave out of a project's `addopts` with a note
//! ([`Outcome::Droppable`]: they write files or use the cache, and do not change which tests run
//! or how they end).

use std::fmt;
use std::ops::Range;

use crate::target::shown;

/// Most arguments in one list.
const MAX_ARGS: usize = 64;
/// Longest argument, in bytes.
const MAX_ARG_BYTES: usize = 1024;

/// A group of pytest options a policy may allow by name (`[pytest] allow_options`), which the
/// allowlist otherwise refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum OptIn {
    /// pytest-xdist's local workers: `-n N`/`--numprocesses`, `--dist`, `--maxprocesses`,
    /// `--max-worker-restart`, `--maxschedchunk`, and `-p xdist` to load it by name. Workers
    /// are started with the same interpreter and the same environment; xdist's remote and
    /// other-interpreter options (`--tx`, `--rsyncdir`, `-d`, `--px`) and its loop mode stay denied.
    Xdist,
}

impl OptIn {
    pub(crate) const ALL: [OptIn; 1] = [OptIn::Xdist];

    pub(crate) fn name(self) -> &'static str {
        match self {
            OptIn::Xdist => "xdist",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<OptIn> {
        OptIn::ALL.into_iter().find(|o| o.name() == name)
    }

    /// What the group's options do, for reasons.
    fn what(self) -> &'static str {
        match self {
            OptIn::Xdist => {
                "starts pytest-xdist worker processes (the same interpreter, the same environment)"
            }
        }
    }

    /// The policy text that would allow the group, for reasons.
    pub(crate) fn hint(self) -> String {
        format!(
            "allow it with `allow_options = [\"{}\"]` under `[pytest]` in the policy file",
            self.name()
        )
    }
}

impl fmt::Display for OptIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a policy adds to the allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// Option groups the policy allows by name.
    pub(crate) allowed: Vec<OptIn>,
}

impl Options {
    fn allows(&self, group: OptIn) -> bool {
        self.allowed.contains(&group)
    }
}

/// How many values a droppable option takes.
#[derive(Clone, Copy)]
enum Arity {
    None,
    One,
    /// argparse's `nargs="?"`: the next argument, unless it looks like an option.
    Optional,
}

/// Checks an option's value; the error completes a sentence that starts with the value.
type Check = fn(&str) -> Result<(), String>;

/// What an option is to the allowlist.
#[derive(Clone, Copy)]
enum Rule {
    /// Allowed; takes no value.
    Flag,
    /// Allowed; takes one value, which must pass the check.
    Value(Check),
    /// `-p NAME`: allowed only as `-p no:NAME` (switching a plugin off), or for a plugin an
    /// allowed [`OptIn`] group loads.
    Plugin,
    /// Allowed when the policy allows the group; takes a value checked by the function, or none.
    OptIn(OptIn, Option<Check>),
    /// Not for the agent; left out of a project's `addopts` with a note.
    Droppable(&'static str, Arity),
    /// Denied, for this reason.
    Denied(&'static str),
}

const CODE: &str = "loads a plugin or module by name, which runs arbitrary code";
const PLUGIN: &str = "loads a plugin by name, which runs arbitrary code; only `-p no:NAME` (switching a plugin off) is allowed";
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
const DEBUGGER: &str =
    "starts an interactive debugger, which would wait for input until the timeout";
const CACHE: &str =
    "needs pytest's cache, which Warden disables so runs do not depend on earlier ones";
const COLLECTION_ERRORS: &str =
    "lets a run with collection errors carry on as if they did not matter";
const IMPORT_ERRORS: &str = "reports doctest modules that fail to import as skipped, hiding errors";
const IN_VIRTUALENV: &str = "collects tests from virtual environments under the target";
const PASTEBIN: &str = "sends test output to an external pastebin service";
const NOT_A_RUN: &str = "prints information instead of running the tests";
const COVERAGE: &str = "is a coverage option: it writes data files and reads its own configuration";
const XDIST_REMOTE: &str =
    "runs tests on other hosts or interpreters, or loops waiting for changes";
const DOUBLE_DASH: &str = "ends the options, so everything after it would be read as targets";

/// Plugins Warden's own run depends on: the terminal output it parses, the report
/// serialisation pytest's reporting uses, and pytest's essential plugins (which pytest refuses
/// to switch off anyway). Not `junitxml`: Warden's results come from its own plugin, which
/// pytest registers under no name, so no `-p no:NAME` reaches it.
const CRITICAL_PLUGINS: [&str; 7] = [
    "terminal",
    "reports",
    "runner",
    "main",
    "fixtures",
    "mark",
    "helpconfig",
];

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
        | "co"
        | "doctest-modules"
        | "doctest-continue-on-failure" => Rule::Flag,
        "maxfail" => Rule::Value(positive_int),
        "report-chars" => Rule::Value(report_chars),
        "tb" => Rule::Value(|v| choice(v, &["auto", "long", "short", "line", "native", "no"])),
        "durations" => Rule::Value(non_negative_int),
        "durations-min" => Rule::Value(non_negative_decimal),
        "capture" => Rule::Value(|v| choice(v, &["fd", "sys", "no", "tee-sys"])),
        "color" => Rule::Value(|v| choice(v, &["yes", "no", "auto"])),
        "show-capture" => Rule::Value(|v| choice(v, &["no", "stdout", "stderr", "log", "all"])),
        "import-mode" => Rule::Value(|v| choice(v, &["prepend", "append", "importlib"])),
        "pythonwarnings" => Rule::Value(warning_filter),
        "doctest-glob" | "ignore" | "ignore-glob" | "deselect" => Rule::Value(any_text),
        "doctest-report" => Rule::Value(|v| {
            choice(
                v,
                &["none", "cdiff", "ndiff", "udiff", "only_first_failure"],
            )
        }),
        "numprocesses" => Rule::OptIn(OptIn::Xdist, Some(numprocesses)),
        "maxprocesses" | "maxschedchunk" => Rule::OptIn(OptIn::Xdist, Some(positive_int)),
        "max-worker-restart" => Rule::OptIn(OptIn::Xdist, Some(non_negative_int)),
        "dist" => Rule::OptIn(
            OptIn::Xdist,
            Some(|v| {
                choice(
                    v,
                    &[
                        "no",
                        "each",
                        "load",
                        "loadscope",
                        "loadfile",
                        "loadgroup",
                        "worksteal",
                    ],
                )
            }),
        ),
        "config-file" | "inifile" => Rule::Denied(CONFIG),
        "rootdir" => Rule::Denied(ROOTDIR),
        "confcutdir" | "noconftest" => Rule::Denied(CONFTEST),
        "basetemp" => Rule::Denied(BASETEMP),
        "junitxml" | "junit-xml" | "junitprefix" | "junit-prefix" | "resultlog" | "result-log"
        | "report-log" => Rule::Droppable(WRITES_REPORT, Arity::One),
        "debug" => Rule::Droppable(WRITES_LOG, Arity::Optional),
        "log-file"
        | "log-file-level"
        | "log-file-format"
        | "log-file-date-format"
        | "log-file-mode" => Rule::Droppable(WRITES_LOG, Arity::One),
        "override-ini" => Rule::Denied(OVERRIDE),
        "pyargs" => Rule::Denied(PYARGS),
        "pdb" | "trace" => Rule::Denied(DEBUGGER),
        "pdbcls" => Rule::Denied(CODE),
        "lf" | "last-failed" | "ff" | "failed-first" | "nf" | "new-first" | "sw" | "stepwise"
        | "sw-skip" | "stepwise-skip" | "sw-reset" | "stepwise-reset" | "cache-clear" => {
            Rule::Droppable(CACHE, Arity::None)
        }
        "lfnf" | "last-failed-no-failures" => Rule::Droppable(CACHE, Arity::One),
        "cache-show" => Rule::Droppable(CACHE, Arity::Optional),
        "continue-on-collection-errors" => Rule::Denied(COLLECTION_ERRORS),
        "doctest-ignore-import-errors" => Rule::Denied(IMPORT_ERRORS),
        "collect-in-virtualenv" => Rule::Denied(IN_VIRTUALENV),
        "pastebin" => Rule::Droppable(PASTEBIN, Arity::One),
        "help" | "version" | "markers" | "fixtures" | "funcargs" | "fixtures-per-test"
        | "trace-config" | "traceconfig" | "setup-plan" | "setupplan" | "setup-only"
        | "setuponly" => Rule::Denied(NOT_A_RUN),
        "tx" | "rsyncdir" | "rsyncignore" | "px" | "looponfail" | "distload" => {
            Rule::Denied(XDIST_REMOTE)
        }
        "cov" => Rule::Droppable(COVERAGE, Arity::Optional),
        "cov-report" | "cov-config" | "cov-fail-under" | "cov-precision" | "cov-context" => {
            Rule::Droppable(COVERAGE, Arity::One)
        }
        "no-cov" | "no-cov-on-fail" | "cov-reset" | "cov-append" | "cov-branch" => {
            Rule::Droppable(COVERAGE, Arity::None)
        }
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
        'W' => Rule::Value(warning_filter),
        'p' => Rule::Plugin,
        'n' => Rule::OptIn(OptIn::Xdist, Some(numprocesses)),
        'c' => Rule::Denied(CONFIG),
        'o' => Rule::Denied(OVERRIDE),
        'h' | 'V' => Rule::Denied(NOT_A_RUN),
        'd' | 'f' => Rule::Denied(XDIST_REMOTE),
        _ => return None,
    })
}

/// How one argument fared: an option with the values it took, or a lone argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// The positions of the option and its values in the list.
    pub(crate) span: Range<usize>,
    pub(crate) outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Allowed,
    /// Not allowed, but leaving it out of a project's `addopts` changes no test: `sentence`
    /// says it is not allowed and why, `why` only why.
    Droppable {
        sentence: String,
        why: String,
    },
    /// Not allowed: the sentence says why, and what would allow it if anything does.
    Denied(String),
}

/// Checks the agent's extra arguments; the error is a full sentence naming the offending one.
pub(crate) fn check(args: &[String], options: &Options) -> Result<(), String> {
    for item in scan(args, options, "extra argument")? {
        match item.outcome {
            Outcome::Allowed => {}
            Outcome::Droppable { sentence, .. } | Outcome::Denied(sentence) => {
                return Err(sentence);
            }
        }
    }
    Ok(())
}

/// Reads `args` like pytest's parser and judges each option with the values it takes. Stops at
/// the first denied item (nothing after it can be read reliably), which is then the last one.
/// `noun` names an argument in sentences ("extra argument", "addopts item"). The error is for
/// lists that are unusable as a whole (too long, an argument with control characters).
pub(crate) fn scan(args: &[String], options: &Options, noun: &str) -> Result<Vec<Item>, String> {
    if args.len() > MAX_ARGS {
        return Err(format!(
            "too many {noun}s ({}; at most {MAX_ARGS})",
            args.len()
        ));
    }
    for arg in args {
        check_text(arg).map_err(|why| format!("{noun} `{}` {why}", shown(arg)))?;
    }
    let mut items = Vec::new();
    let mut index = 0;
    while index < args.len() {
        let start = index;
        let outcome = one(args, &mut index, options, noun);
        let stop = matches!(outcome, Outcome::Denied(_));
        items.push(Item {
            span: start..index,
            outcome,
        });
        if stop {
            break;
        }
    }
    Ok(items)
}

/// Judges the argument at `index` and the values it takes, moving `index` past them.
fn one(args: &[String], index: &mut usize, options: &Options, noun: &str) -> Outcome {
    let arg = args[*index].as_str();
    *index += 1;
    let denied =
        |why: String| Outcome::Denied(format!("{noun} `{}` is not allowed: {why}", shown(arg)));
    if arg == "--" {
        return denied(DOUBLE_DASH.to_owned());
    }
    if let Some(body) = arg.strip_prefix("--") {
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let option = format!("--{name}");
        let Some(rule) = long(name) else {
            return denied(format!(
                "`{option}` is not an option Warden allows for pytest, and no policy key allows it"
            ));
        };
        if let Rule::Droppable(why, arity) = rule {
            match (arity, inline) {
                (Arity::None, Some(_)) => {}
                (Arity::One, None) if take_value(args, index, &option, noun).is_err() => {
                    return Outcome::Denied(format!("{noun} `{option}` needs a value"));
                }
                (Arity::Optional, None)
                    if args.get(*index).is_some_and(|next| !next.starts_with('-')) =>
                {
                    *index += 1;
                }
                _ => {}
            }
            return Outcome::Droppable {
                sentence: format!(
                    "{noun} `{}` is not allowed: `{option}` {why}; no policy key allows it",
                    shown(arg)
                ),
                why: format!("`{option}` {why}"),
            };
        }
        return judge(rule, &option, inline, args, index, options, noun, arg);
    }
    if let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) {
        return cluster_outcome(arg, cluster, args, index, options, noun);
    }
    if arg == "-" {
        return denied("a lone `-` is not an option pytest has".to_owned());
    }
    denied(
        "it is not an option, so pytest would run it as another target; put the target in `target`"
            .to_owned(),
    )
}

/// Judges a long or short option with its value (inline, or taken from the list).
#[allow(clippy::too_many_arguments)]
fn judge(
    rule: Rule,
    option: &str,
    inline: Option<&str>,
    args: &[String],
    index: &mut usize,
    options: &Options,
    noun: &str,
    arg: &str,
) -> Outcome {
    let value = |index: &mut usize| -> Result<String, String> {
        match inline {
            Some(value) => Ok(value.to_owned()),
            None => take_value(args, index, option, noun).map(str::to_owned),
        }
    };
    let checked = |check_value: Check, index: &mut usize| match value(index) {
        Err(why) => Outcome::Denied(why),
        Ok(value) => match check_value(&value) {
            Ok(()) => Outcome::Allowed,
            Err(why) => Outcome::Denied(format!("value `{}` of `{option}` {why}", shown(&value))),
        },
    };
    match rule {
        Rule::Flag if inline.is_some() => Outcome::Denied(format!(
            "{noun} `{}`: `{option}` takes no value",
            shown(arg)
        )),
        Rule::Flag => Outcome::Allowed,
        Rule::Value(check_value) => checked(check_value, index),
        Rule::Plugin => match value(index) {
            Err(why) => Outcome::Denied(why),
            Ok(name) => plugin(&name, options, noun),
        },
        Rule::OptIn(group, check_value) => {
            if !options.allows(group) {
                // Consume the value so the item reads whole in messages and notes.
                if check_value.is_some() && inline.is_none() && *index < args.len() {
                    *index += 1;
                }
                return Outcome::Denied(format!(
                    "{noun} `{}` is not allowed: `{option}` {} and the policy does not allow `{group}`; {}",
                    shown(arg),
                    group.what(),
                    group.hint()
                ));
            }
            match check_value {
                Some(check_value) => checked(check_value, index),
                None if inline.is_some() => Outcome::Denied(format!(
                    "{noun} `{}`: `{option}` takes no value",
                    shown(arg)
                )),
                None => Outcome::Allowed,
            }
        }
        Rule::Droppable(why, _) | Rule::Denied(why) => Outcome::Denied(format!(
            "{noun} `{}` is not allowed: `{option}` {why}; no policy key allows it",
            shown(arg)
        )),
    }
}

/// `-p NAME`: switching a plugin off is not loading code, so `no:NAME` is allowed unless Warden
/// depends on the plugin; loading one is allowed only through an opt-in group.
fn plugin(value: &str, options: &Options, noun: &str) -> Outcome {
    let shown_value = shown(value);
    if let Some(name) = value.strip_prefix("no:") {
        if !is_plugin_name(name) {
            return Outcome::Denied(format!(
                "{noun} `-p {shown_value}` is not allowed: `{}` is not a plugin name",
                shown(name)
            ));
        }
        if CRITICAL_PLUGINS.contains(&name) {
            return Outcome::Denied(format!(
                "{noun} `-p {shown_value}` is not allowed: Warden's run depends on the `{name}` plugin (the output Warden reads, or pytest itself); no policy key allows switching it off"
            ));
        }
        return Outcome::Allowed;
    }
    if matches!(value, "xdist" | "xdist.plugin") {
        if options.allows(OptIn::Xdist) {
            return Outcome::Allowed;
        }
        return Outcome::Denied(format!(
            "{noun} `-p {shown_value}` is not allowed: it {} and the policy does not allow `xdist`; {}",
            OptIn::Xdist.what(),
            OptIn::Xdist.hint()
        ));
    }
    Outcome::Denied(format!(
        "{noun} `-p {shown_value}` is not allowed: `-p` {PLUGIN}; no policy key allows it"
    ))
}

fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A cluster of short options after one `-`: flags may be combined (`-xvs`); the first option
/// that takes a value takes the rest of the cluster, or the next argument when nothing is left.
fn cluster_outcome(
    arg: &str,
    cluster: &str,
    args: &[String],
    index: &mut usize,
    options: &Options,
    noun: &str,
) -> Outcome {
    for (at, letter) in cluster.char_indices() {
        let option = format!("-{letter}");
        let within = if cluster.len() > letter.len_utf8() {
            format!(" (in `{}`)", shown(arg))
        } else {
            String::new()
        };
        let rest = &cluster[at + letter.len_utf8()..];
        let inline = (!rest.is_empty()).then_some(rest);
        match short(letter) {
            Some(Rule::Flag) => {}
            Some(rule @ (Rule::Value(_) | Rule::Plugin | Rule::OptIn(..))) => {
                if let Rule::OptIn(_, None) = rule {
                    // An opt-in flag: judged alone, the cluster goes on.
                    match judge(rule, &option, None, args, index, options, noun, &option) {
                        Outcome::Allowed => continue,
                        other => return other,
                    }
                }
                return judge(rule, &option, inline, args, index, options, noun, arg);
            }
            Some(Rule::Denied(why) | Rule::Droppable(why, _)) => {
                return Outcome::Denied(format!(
                    "{noun} `{option}`{within} is not allowed: it {why}; no policy key allows it"
                ));
            }
            None => {
                return Outcome::Denied(format!(
                    "{noun} `{}`{within} is not allowed: `{option}` is not an option Warden allows for pytest, and no policy key allows it",
                    shown(&option)
                ));
            }
        }
    }
    Outcome::Allowed
}

/// The separate value of an option that takes one.
fn take_value<'a>(
    args: &'a [String],
    index: &mut usize,
    option: &str,
    noun: &str,
) -> Result<&'a str, String> {
    match args.get(*index) {
        Some(value) => {
            *index += 1;
            Ok(value)
        }
        None => Err(format!("{noun} `{option}` needs a value")),
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

fn any_text(_: &str) -> Result<(), String> {
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

/// xdist's `-n`: a number of workers, or `auto`/`logical` (one per CPU).
fn numprocesses(value: &str) -> Result<(), String> {
    if matches!(value, "auto" | "logical") || non_negative_int(value).is_ok() {
        Ok(())
    } else {
        Err("is not a number of workers, `auto` or `logical`".to_owned())
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

/// A `-W` warning filter, `action:message:category:module:lineno`, as pytest's
/// `parse_warning_filter` reads it. pytest imports the category's module when the category has
/// a dot (`pkg.mod.SomeWarning`); a bare name is looked up among the built-ins and imports
/// nothing, so only bare names are allowed.
fn warning_filter(value: &str) -> Result<(), String> {
    const ACTIONS: [&str; 7] = [
        "default", "always", "all", "ignore", "module", "once", "error",
    ];
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() > 5 {
        return Err("has more than five `:`-separated fields".to_owned());
    }
    let action = parts[0].trim();
    if !action.is_empty() && !ACTIONS.iter().any(|a| a.starts_with(action)) {
        return Err(format!(
            "has action `{}`, which is not one of {}",
            shown(action),
            ACTIONS.join(", ")
        ));
    }
    let category = parts.get(2).map_or("", |c| c.trim());
    if category.contains('.') {
        return Err(format!(
            "names the category `{}` by module path, so pytest would import that module (arbitrary code); use a built-in category such as `DeprecationWarning`",
            shown(category)
        ));
    }
    if !category.is_empty() && !category.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(format!(
            "has category `{}`, which is not a name",
            shown(category)
        ));
    }
    let lineno = parts.get(4).map_or("", |l| l.trim());
    if !lineno.is_empty() && non_negative_int(lineno).is_err() {
        return Err(format!(
            "has line number `{}`, which is not a whole number",
            shown(lineno)
        ));
    }
    Ok(())
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

    fn owned(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    fn ok(args: &[&str]) -> bool {
        check(&owned(args), &Options::default()).is_ok()
    }

    fn ok_with_xdist(args: &[&str]) -> bool {
        let options = Options {
            allowed: vec![OptIn::Xdist],
        };
        check(&owned(args), &options).is_ok()
    }

    #[test]
    fn clusters_follow_argparse() {
        assert!(ok(&["-xvs"]));
        assert!(ok(&["-xk", "test_a"]));
        assert!(ok(&["-xktest_a"]));
        assert!(ok(&["-kp"]), "`p` is -k's value here, not -p");
        assert!(!ok(&["-xp", "foo"]));
        assert!(ok(&["-xp", "no:logging"]));
        assert!(ok(&["-xpno:logging"]));
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

    #[test]
    fn plugins_may_be_switched_off_but_not_loaded_or_critical_ones_removed() {
        assert!(ok(&["-p", "no:logging"]));
        assert!(ok(&["-p", "no:cacheprovider", "-p", "no:randomly"]));
        for critical in CRITICAL_PLUGINS {
            assert!(!ok(&["-p", &format!("no:{critical}")]), "{critical}");
        }
        assert!(!ok(&["-p", "no:"]));
        assert!(!ok(&["-p", "no:a b"]));
        assert!(!ok(&["-p", "evil"]));
        assert!(!ok(&["-p", "xdist"]));
        assert!(ok_with_xdist(&["-p", "xdist"]));
        assert!(!ok_with_xdist(&["-p", "evil"]));
    }

    #[test]
    fn warning_filters_import_nothing() {
        assert!(ok(&["-W", "error::DeprecationWarning"]));
        assert!(ok(&["-Werror"]));
        assert!(ok(&["-W", "ignore:some message:UserWarning:mod.*:12"]));
        assert!(ok(&["--pythonwarnings=ignore"]));
        assert!(!ok(&["-W", "error::evil.Warning"]));
        assert!(!ok(&["-W", "explode"]));
        assert!(!ok(&["-W", "a:b:c:d:e:f"]));
        assert!(!ok(&["-W", "error::Deprecation-Warning"]));
    }

    #[test]
    fn xdist_needs_the_policy_and_stays_local() {
        let denied = check(&owned(&["-n", "4"]), &Options::default()).unwrap_err();
        assert!(denied.contains("allow_options = [\"xdist\"]"), "{denied}");
        assert!(ok_with_xdist(&["-n", "4"]));
        assert!(ok_with_xdist(&["-nauto", "--dist=loadscope"]));
        assert!(ok_with_xdist(&[
            "--numprocesses",
            "logical",
            "--maxprocesses=2"
        ]));
        assert!(!ok_with_xdist(&["-n", "many"]));
        assert!(!ok_with_xdist(&["--dist", "everywhere"]));
        assert!(!ok_with_xdist(&["--tx", "popen//python=/tmp/evil"]));
        assert!(!ok_with_xdist(&["-d"]));
        assert!(!ok_with_xdist(&["--looponfail"]));
    }

    #[test]
    fn droppable_items_take_their_values() {
        let scanned = scan(
            &owned(&["--cov", "src", "-q", "--cov-report=term", "--cov", "--lf"]),
            &Options::default(),
            "addopts item",
        )
        .unwrap();
        let spans: Vec<Range<usize>> = scanned.iter().map(|i| i.span.clone()).collect();
        assert_eq!(spans, [0..2, 2..3, 3..4, 4..5, 5..6]);
        assert!(matches!(scanned[0].outcome, Outcome::Droppable { .. }));
        assert_eq!(scanned[1].outcome, Outcome::Allowed);
        assert!(!ok(&["--cov=src"]), "the agent may not ask for it");
    }
}
