//! The mission's cumulative test-time budget.

use std::time::Duration;

use warden_governance_api::{Authorized, Limits};

use crate::evidence::RunEvidence;
use crate::runner::Runner;

/// Cumulative test time across the runs of one mission (a first run and its reruns, say),
/// against the policy's `limits().budget`.
///
/// Every run gets a deadline of at most what is left ([`MissionBudget::grant`]), so no run can
/// be granted time past the budget; a run is refused before it starts when less than
/// [`MissionBudget::MIN_GRANT`] is left. What a run actually took is charged afterwards
/// ([`MissionBudget::charge`]); it can exceed its grant by the grace period and the cleanup
/// after a timeout (seconds at most), which the next grant then lacks.
///
/// ```
/// use std::time::Duration;
/// use warden_executor::MissionBudget;
///
/// let mut budget = MissionBudget::new(Duration::from_secs(600));
/// assert_eq!(budget.grant(Duration::from_secs(300)), Ok(Duration::from_secs(300)));
/// budget.charge(Duration::from_secs(450));
/// // A 300 s timeout is cut to the 150 s that are left.
/// assert_eq!(budget.grant(Duration::from_secs(300)), Ok(Duration::from_secs(150)));
/// budget.charge(Duration::from_secs(150));
/// assert!(budget.grant(Duration::from_secs(300)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissionBudget {
    total: Duration,
    spent: Duration,
}

/// The budget cannot pay for another run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the mission's test-time budget is used up: {:.1} s of {:.1} s spent, less than {:.0} s left for another run",
    spent.as_secs_f64(),
    total.as_secs_f64(),
    MissionBudget::MIN_GRANT.as_secs_f64()
)]
pub struct BudgetExhausted {
    /// The whole budget.
    pub total: Duration,
    /// What the mission's runs have taken so far.
    pub spent: Duration,
}

impl MissionBudget {
    /// The shortest deadline worth starting a run for: starting Python and pytest alone takes a
    /// good part of a second.
    pub const MIN_GRANT: Duration = Duration::from_secs(1);

    /// A budget of `total`, nothing spent.
    pub fn new(total: Duration) -> Self {
        MissionBudget {
            total,
            spent: Duration::ZERO,
        }
    }

    /// The policy's budget.
    pub fn from_limits(limits: &Limits) -> Self {
        MissionBudget::new(limits.budget)
    }

    /// The whole budget.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// Time charged so far.
    pub fn spent(&self) -> Duration {
        self.spent
    }

    /// Time left.
    pub fn remaining(&self) -> Duration {
        self.total.saturating_sub(self.spent)
    }

    /// The deadline for a run that would like `timeout`: the smaller of the two and what is
    /// left; an error when less than [`MissionBudget::MIN_GRANT`] is left.
    pub fn grant(&self, timeout: Duration) -> Result<Duration, BudgetExhausted> {
        let remaining = self.remaining();
        if remaining < Self::MIN_GRANT {
            return Err(BudgetExhausted {
                total: self.total,
                spent: self.spent,
            });
        }
        Ok(timeout.min(remaining))
    }

    /// Records time a run took.
    pub fn charge(&mut self, took: Duration) {
        self.spent = self.spent.saturating_add(took);
    }

    /// Grants a deadline for the policy's timeout, runs, and charges what the run took.
    pub async fn run<R: Runner + ?Sized>(
        &mut self,
        runner: &R,
        auth: &Authorized,
    ) -> Result<RunEvidence, BudgetExhausted> {
        let deadline = self.grant(auth.limits().timeout)?;
        let evidence = runner.run(auth, deadline).await;
        self.charge(evidence.duration());
        Ok(evidence)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use warden_governance_api::{Policy, Root, ToolRequest, Verdict};

    use super::*;

    #[test]
    fn grants_shrink_to_what_is_left_and_stop_below_the_minimum() {
        let mut b = MissionBudget::new(Duration::from_secs(10));
        assert_eq!(b.grant(Duration::from_secs(4)), Ok(Duration::from_secs(4)));
        b.charge(Duration::from_secs(8));
        assert_eq!(b.remaining(), Duration::from_secs(2));
        assert_eq!(b.grant(Duration::from_secs(4)), Ok(Duration::from_secs(2)));
        b.charge(Duration::from_millis(1500));
        let err = b.grant(Duration::from_secs(4)).unwrap_err();
        assert_eq!(err.spent, Duration::from_millis(9500));
        assert!(err.to_string().contains("9.5 s of 10.0 s spent"), "{err}");
        b.charge(Duration::from_secs(100));
        assert_eq!(b.remaining(), Duration::ZERO);
        assert!(
            MissionBudget::new(Duration::ZERO)
                .grant(Duration::from_secs(1))
                .is_err()
        );
    }

    /// Records the deadlines it is given and pretends each run took `took`.
    struct FakeRunner {
        took: Duration,
        deadlines: Mutex<Vec<Duration>>,
    }

    #[async_trait]
    impl Runner for FakeRunner {
        async fn run(&self, _auth: &Authorized, deadline: Duration) -> RunEvidence {
            self.deadlines.lock().unwrap().push(deadline);
            let mut evidence = RunEvidence::not_started(Vec::new(), deadline, "fake".into());
            evidence.duration_ms = self.took.as_millis() as u64;
            evidence
        }
    }

    #[tokio::test]
    async fn running_through_the_budget_charges_runs_and_refuses_when_spent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("runtime/tests")).unwrap();
        let root = Root::new(dir.path()).unwrap();
        let policy = Policy::from_toml_str(
            "version = 1\n[limits]\ntimeout_secs = 40\nbudget_secs = 100\n\
             [[rule]]\nid = \"t\"\neffect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"runtime/tests\"]\n",
        )
        .unwrap();
        let Verdict::Allowed(auth) = policy.authorize(
            &root,
            &ToolRequest::pytest_run("runtime/tests", Vec::<String>::new()),
        ) else {
            panic!("allowed by the policy above");
        };
        let runner = FakeRunner {
            took: Duration::from_secs(35),
            deadlines: Mutex::new(Vec::new()),
        };
        let mut budget = MissionBudget::from_limits(auth.limits());
        for _ in 0..3 {
            budget.run(&runner, &auth).await.unwrap();
        }
        assert_eq!(budget.spent(), Duration::from_secs(105));
        assert!(budget.run(&runner, &auth).await.is_err());
        assert_eq!(
            *runner.deadlines.lock().unwrap(),
            [40, 40, 30].map(Duration::from_secs)
        );
    }
}
