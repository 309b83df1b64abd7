//! The yardstick's Markdown table.

use std::fmt::Write as _;

use super::{Outcome, SuitesArgs};
use crate::bench::{Machine, Verdict, median, median_interval, time, time_with_spread};

/// Warden's time may be at most this multiple of bare pytest's.
pub(crate) const TARGET_RATIO: f64 = 1.03;

/// The whole report: the machine, the table, and how each project was run.
pub(crate) fn markdown(machine: &Machine, outcomes: &[Outcome], args: &SuitesArgs) -> String {
    let m = machine;
    let mut out = String::new();
    let rounds = if args.quick {
        "one cold run of each (`--quick`: counts only, times not judged)".to_owned()
    } else {
        format!(
            "one warm-up run of each, then {} alternating rounds (medians, spread in brackets; \
             a time target is met when the 95 % interval of the median per-round ratio is \
             within it, and open when it spans it or when fewer than 6 rounds give none)",
            args.rounds
        )
    };
    let _ = writeln!(
        out,
        "Machine: {}, {} cores, Linux {}; Python {}, pytest {}. Load average (1, 5, 15 min) {} \
         at the start and {} at the end. Runs: {rounds}. Warden's sandbox: {}.\n",
        m.cpu,
        m.cores,
        m.kernel,
        m.python,
        m.pytest,
        m.load_start,
        m.load_end,
        match args.sandbox {
            super::Sandbox::On => "on (the default, required)",
            super::Sandbox::Off => "off (`--sandbox off`: `[sandbox] mode = \"off\"`)",
        }
    );
    out.push_str(
        "| Project (sdist) | Bare pytest | Bare pytest's counts | Warden's counts | Counts | \
         Fingerprint | Bare pytest time | Warden time | Warden / bare | ≤ × 1.03 |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for outcome in outcomes {
        row(&mut out, outcome, args.quick);
    }
    out.push_str(
        "\nEach project is its PyPI source distribution, unchanged, unpacked twice (one copy per \
         contender), with its test dependencies pinned in `xtask/suites-requirements.txt`. Bare \
         pytest is the project's documented command run from the unpacked root in the \
         activated virtualenv; Warden is `warden verify TARGET --retries 0 -- ARGS` with the \
         same arguments (bare pytest does not rerun failures, so Warden does not either), \
         under the policy `warden init` writes. Counts are compared outcome by outcome, \
         subtests included; like pytest's line, Warden's `failed`, `skipped` and `xfailed` \
         include failing, skipped and xfailed subtests (its `subtests_failed`, ... say how \
         many); `deselected` is shown, not compared. Fingerprint: every Warden run of the unchanged tree must report the same \
         one. Reproduce with `cargo xtask suites` (`--quick` for the counts alone).\n\n",
    );
    for outcome in outcomes {
        let p = &outcome.project;
        let _ = writeln!(out, "- {}: {}.", p.label(), p.source);
    }
    out
}

fn row(out: &mut String, outcome: &Outcome, quick: bool) {
    let p = &outcome.project;
    let (Some(bare), Some(warden)) = (outcome.bare.first(), outcome.warden.first()) else {
        let problem = outcome.problems.join("; ").replace('|', "\\|");
        let _ = writeln!(
            out,
            "| {} | `{}` | **run failed**: {problem} | | | | | | | |",
            p.label(),
            p.command()
        );
        return;
    };
    let counts_ok = bare.counts.differences(&warden.counts).is_empty()
        && !outcome
            .problems
            .iter()
            .any(|problem| problem.contains("counts"));
    let fingerprint_ok = !outcome
        .problems
        .iter()
        .any(|problem| problem.contains("fingerprint"));
    let runs = outcome.warden.len() + usize::from(outcome.narrow_fingerprint.is_some());
    let timed = outcome.timed_from.min(outcome.bare.len());
    let bare_secs: Vec<f64> = outcome.bare[timed..]
        .iter()
        .map(|r| r.elapsed.as_secs_f64())
        .collect();
    let warden_secs: Vec<f64> = outcome.warden[timed..]
        .iter()
        .map(|r| r.elapsed.as_secs_f64())
        .collect();
    // Paired by round, so that a slow moment weighs on both sides of one comparison.
    let ratios: Vec<f64> = bare_secs
        .iter()
        .zip(&warden_secs)
        .map(|(b, w)| w / b)
        .collect();
    let (ratio, met) = judged(&ratios, quick);
    let shown = |secs: &[f64]| {
        if secs.len() == 1 {
            time(secs[0])
        } else {
            time_with_spread(secs)
        }
    };
    let _ = writeln!(
        out,
        "| {} | `{}` | {} | {} | {} | {} | {} | {} | {ratio} | {met} |",
        p.label(),
        p.command(),
        bare.counts,
        warden.counts,
        if counts_ok { "identical" } else { "**differ**" },
        if fingerprint_ok {
            format!("stable ({runs} runs)")
        } else {
            "**unstable**".to_owned()
        },
        shown(&bare_secs),
        shown(&warden_secs),
    );
}

/// The "Warden / bare" and "≤ × 1.03" cells for per-round ratios. Met only when the median's
/// whole 95 % interval is within the target: on a noisy machine a median of a few rounds under
/// × 1.03 says little (fewer than 6 rounds give no such interval at all, and the verdict stays
/// open).
fn judged(ratios: &[f64], quick: bool) -> (String, String) {
    let interval = median_interval(ratios);
    let ratio = median(ratios);
    let shown = match interval {
        Some(i) => format!(
            "× {ratio:.3} (95 % interval × {:.3} to × {:.3})",
            i.low, i.high
        ),
        None => format!("× {ratio:.3}"),
    };
    let met = if quick {
        "—"
    } else {
        Verdict::of(interval, TARGET_RATIO).cell()
    };
    (shown, met.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_verdict_needs_enough_rounds_on_one_side_of_the_target() {
        let (shown, met) = judged(&[0.99, 1.0, 1.01], false);
        assert_eq!(shown, "× 1.000");
        assert_eq!(met, "not resolved: the 95 % interval spans the target");
        let (shown, met) = judged(&[0.98, 0.99, 1.0, 1.01, 1.02, 1.0], false);
        assert_eq!(shown, "× 1.000 (95 % interval × 0.980 to × 1.020)");
        assert_eq!(met, "yes");
        let (_, met) = judged(&[1.1, 1.2, 1.15, 1.12, 1.3, 1.05], false);
        assert_eq!(met, "**no**");
        let (_, met) = judged(&[0.9, 1.2, 1.0, 1.0, 1.0, 1.0], false);
        assert_eq!(met, "not resolved: the 95 % interval spans the target");
        assert_eq!(judged(&[1.5], true).1, "—");
    }
}
