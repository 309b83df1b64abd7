//! Holding a run's test code back until the caller is ready for it.
//!
//! Before any test code runs, Warden fingerprints the tree (a later fingerprint says whether
//! every attempt saw the same code), and the run has work of its own before it can start the
//! interpreter: the bytecode cache's checks and, under the sandbox, the namespaces, mounts and
//! Landlock rules. Done one after the other they add up; a [`StartGate`] lets them overlap.
//! The run does everything it can before the gate, and nothing of the code under test starts
//! until the [`GateKey`] opens it: a confined run's helper sets the sandbox up and then waits
//! on its standard input for Warden's word before it starts the interpreter.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::evidence::RunEvidence;

/// The evidence of a run whose gate's key was dropped unopened: nothing of it ran.
pub(crate) fn called_off(argv: Vec<String>, deadline: Duration) -> RunEvidence {
    RunEvidence::not_started(
        argv,
        deadline,
        "the run was called off before its tests started: nothing ran".to_owned(),
    )
}

/// Holds a run's test code back until its [`GateKey`] opens it. A key dropped unopened
/// calls the run off: nothing of the code under test starts.
///
/// A watched gate ([`StartGate::watched`]) also says when the run's processes are all gone,
/// before the run's own work on what they left (compiling, reading the results, cleaning
/// up) is done: the tree cannot change under the run any more, so the caller can fingerprint
/// it meanwhile.
#[derive(Debug)]
pub struct StartGate {
    key: Option<oneshot::Receiver<()>>,
    ended: Option<oneshot::Sender<()>>,
}

/// Opens its [`StartGate`].
#[derive(Debug)]
pub struct GateKey(oneshot::Sender<()>);

/// Says when the run of a watched [`StartGate`] has no process left.
#[derive(Debug)]
pub struct RunEnded(oneshot::Receiver<()>);

impl StartGate {
    /// A closed gate and the key that opens it.
    pub fn closed() -> (GateKey, StartGate) {
        let (key, gate) = oneshot::channel();
        let gate = StartGate {
            key: Some(gate),
            ended: None,
        };
        (GateKey(key), gate)
    }

    /// A gate that is already open: the run starts as soon as it is ready.
    pub fn open() -> StartGate {
        StartGate {
            key: None,
            ended: None,
        }
    }

    /// This gate, watched: the [`RunEnded`] resolves once the run's processes are gone.
    pub fn watched(mut self) -> (StartGate, RunEnded) {
        let (ended, watch) = oneshot::channel();
        self.ended = Some(ended);
        (self, RunEnded(watch))
    }

    /// Waits for the key; `false` if it was dropped unopened.
    pub(crate) async fn opened(&mut self) -> bool {
        match self.key.take() {
            None => true,
            Some(gate) => gate.await.is_ok(),
        }
    }

    /// Every process of the run is gone (waited for, or killed and reaped).
    pub(crate) fn ended(&mut self) {
        if let Some(ended) = self.ended.take() {
            // Nobody may be watching any more.
            let _ = ended.send(());
        }
    }
}

impl RunEnded {
    /// Waits until the run's processes are gone: `true`, or `false` when the run ended
    /// without saying so (it never started, or its runner does not tell).
    pub async fn wait(self) -> bool {
        self.0.await.is_ok()
    }
}

impl GateKey {
    /// Lets the run start its test code.
    pub fn open(self) {
        // The run may be gone already (it failed before the gate): nothing waits then.
        let _ = self.0.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_opens_with_its_key_and_stays_shut_without_it() {
        assert!(StartGate::open().opened().await);
        let (key, mut gate) = StartGate::closed();
        key.open();
        assert!(gate.opened().await);
        let (key, mut gate) = StartGate::closed();
        drop(key);
        assert!(!gate.opened().await);
    }

    #[tokio::test]
    async fn a_watched_gate_says_when_the_run_ended_and_only_then() {
        let (mut gate, ended) = StartGate::open().watched();
        gate.ended();
        assert!(ended.wait().await);
        // Dropped without a word (the run never started): no claim that it ended.
        let (gate, ended) = StartGate::open().watched();
        drop(gate);
        assert!(!ended.wait().await);
    }
}
