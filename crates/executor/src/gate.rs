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
#[derive(Debug)]
pub struct StartGate(Option<oneshot::Receiver<()>>);

/// Opens its [`StartGate`].
#[derive(Debug)]
pub struct GateKey(oneshot::Sender<()>);

impl StartGate {
    /// A closed gate and the key that opens it.
    pub fn closed() -> (GateKey, StartGate) {
        let (key, gate) = oneshot::channel();
        (GateKey(key), StartGate(Some(gate)))
    }

    /// A gate that is already open: the run starts as soon as it is ready.
    pub fn open() -> StartGate {
        StartGate(None)
    }

    /// Waits for the key; `false` if it was dropped unopened.
    pub(crate) async fn opened(self) -> bool {
        match self.0 {
            None => true,
            Some(gate) => gate.await.is_ok(),
        }
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
        let (key, gate) = StartGate::closed();
        key.open();
        assert!(gate.opened().await);
        let (key, gate) = StartGate::closed();
        drop(key);
        assert!(!gate.opened().await);
    }
}
