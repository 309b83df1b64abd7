//! What a set of timed rounds can say: medians, spreads, and a distribution-free confidence
//! interval for a median, so that a verdict against a target says when the machine's noise
//! leaves it open instead of reading a yes or a no into it.
//!
//! The interval is the classic one from order statistics: with `n` values, the median lies
//! between the `k`-th smallest and the `k`-th largest with probability
//! `1 - 2 * P(Binomial(n, 1/2) < k)`, whatever the distribution of the values. It needs no
//! assumption about the noise (on a shared virtual machine it is neither normal nor constant),
//! only rounds that are independent of each other.

/// The confidence asked of every interval.
pub(crate) const CONFIDENCE: f64 = 0.95;

/// Beyond this many values the binomial weights underflow `f64` (`0.5^1075` is zero); a bench
/// never runs that many rounds.
const MAX_VALUES: usize = 1_000;

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The lowest and the highest of `values`.
pub(crate) fn spread(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (low, high)
}

/// A confidence interval for a median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Interval {
    pub(crate) low: f64,
    pub(crate) high: f64,
    /// The interval's exact coverage (at least [`CONFIDENCE`]).
    pub(crate) coverage: f64,
}

/// The narrowest order-statistics interval that covers the median of the distribution behind
/// `values` with probability at least [`CONFIDENCE`]; `None` when there are too few values
/// for any (fewer than 6) or more than this code handles.
pub(crate) fn median_interval(values: &[f64]) -> Option<Interval> {
    let n = values.len();
    if n == 0 || n > MAX_VALUES {
        return None;
    }
    let tail = (1.0 - CONFIDENCE) / 2.0;
    // `below` accumulates P(B < k) for B ~ Binomial(n, 1/2), `weight` is P(B = k).
    let (mut k, mut below, mut weight) = (0usize, 0.0f64, 0.5f64.powi(n as i32));
    while below + weight <= tail {
        below += weight;
        k += 1;
        weight *= (n - k + 1) as f64 / k as f64;
    }
    // With `k` values known to be below the interval, it runs from the (k)-th smallest to the
    // (k)-th largest, 1-based; k = 0 means no interval reaches the confidence.
    if k == 0 {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(Interval {
        low: sorted[k - 1],
        high: sorted[n - k],
        coverage: 1.0 - 2.0 * below,
    })
}

/// Where a measured median stands against a target it must not exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The whole interval is at or under the target.
    Met,
    /// The whole interval is over the target.
    Missed,
    /// The interval straddles the target (or there is none): these rounds cannot tell.
    Unresolved,
}

impl Verdict {
    /// The verdict of `interval` against `target` (lower is better).
    pub(crate) fn of(interval: Option<Interval>, target: f64) -> Verdict {
        match interval {
            Some(i) if i.high <= target => Verdict::Met,
            Some(i) if i.low > target => Verdict::Missed,
            _ => Verdict::Unresolved,
        }
    }

    /// The table's "Met" cell.
    pub(crate) fn cell(self) -> &'static str {
        match self {
            Verdict::Met => "yes",
            Verdict::Missed => "**no**",
            Verdict::Unresolved => "not resolved: the 95 % interval spans the target",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (1.0, 3.0));
    }

    #[test]
    fn the_median_interval_is_the_textbook_one() {
        // Five values: even the whole range covers the median with only 1 - 2/32 = 93.75 %.
        assert_eq!(median_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
        // Six: the whole range, 1 - 2/64.
        let six = median_interval(&[6.0, 1.0, 5.0, 2.0, 4.0, 3.0]).unwrap();
        assert_eq!((six.low, six.high), (1.0, 6.0));
        assert!((six.coverage - (1.0 - 2.0 / 64.0)).abs() < 1e-12);
        // Forty: the 14th smallest to the 14th largest (coverage 96.2 %), as in the tables.
        let forty: Vec<f64> = (1..=40).rev().map(f64::from).collect();
        let i = median_interval(&forty).unwrap();
        assert_eq!((i.low, i.high), (14.0, 27.0));
        assert!((i.coverage - 0.961_5).abs() < 1e-4, "{}", i.coverage);
        // More rounds, a narrower interval, never under the confidence.
        let many: Vec<f64> = (1..=400).map(f64::from).collect();
        let wide = median_interval(&many).unwrap();
        assert!(wide.coverage >= CONFIDENCE);
        assert!(wide.high - wide.low < 45.0, "{wide:?}");
        assert_eq!(median_interval(&vec![1.0; MAX_VALUES + 1]), None);
        assert_eq!(median_interval(&[]), None);
    }

    #[test]
    fn a_verdict_needs_the_whole_interval_on_one_side() {
        let i = |low, high| {
            Some(Interval {
                low,
                high,
                coverage: 0.96,
            })
        };
        assert_eq!(Verdict::of(i(0.95, 1.02), 1.03), Verdict::Met);
        assert_eq!(Verdict::of(i(0.95, 1.03), 1.03), Verdict::Met);
        assert_eq!(Verdict::of(i(1.031, 1.2), 1.03), Verdict::Missed);
        assert_eq!(Verdict::of(i(0.99, 1.05), 1.03), Verdict::Unresolved);
        assert_eq!(Verdict::of(None, 1.03), Verdict::Unresolved);
        assert_eq!(Verdict::Missed.cell(), "**no**");
    }
}
