//! The file-system rules (Landlock) and the signal and abstract-socket scopes.

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, LandlockStatus, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};

use crate::config::{Config, Status};

/// The newest ABI these rules know how to use; the kernel's may be lower (best effort), down to
/// the floor, ABI 1 (reads and writes beneath paths), below which nothing is enforced.
const WANTED: ABI = ABI::V6;

pub(crate) fn restrict(config: &Config, status: &mut Status) {
    match build_and_restrict(config) {
        Ok((abi, scoped)) => {
            status.landlock_abi = Some(abi);
            if scoped {
                status.scopes = vec!["signal".into(), "abstract_unix_socket".into()];
            }
        }
        Err(reason) => status.missing.push(format!("Landlock: {reason}")),
    }
}

fn build_and_restrict(config: &Config) -> Result<(u32, bool), String> {
    let read = AccessFs::from_read(WANTED);
    let all = AccessFs::from_all(WANTED);
    let err = |e: landlock::RulesetError| e.to_string();
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(err)?
        .scope(Scope::Signal | Scope::AbstractUnixSocket)
        .map_err(err)?;
    // Each rule costs an open, two stats and a system call: a path given twice, or readable
    // and writable, gets one rule with the wider access.
    let mut writable: Vec<&std::path::Path> = vec![&config.root];
    for path in &config.write {
        if !writable.contains(&path.as_path()) {
            writable.push(path);
        }
    }
    let mut readable: Vec<&std::path::Path> = Vec::new();
    for path in &config.read {
        if !writable.contains(&path.as_path()) && !readable.contains(&path.as_path()) {
            readable.push(path);
        }
    }
    let status = ruleset
        .create()
        .map_err(err)?
        .add_rules(path_beneath_rules(&readable, read))
        .map_err(err)?
        .add_rules(path_beneath_rules(&writable, all))
        .map_err(err)?
        .add_rules(path_beneath_rules(
            &config.write_files,
            AccessFs::from_file(WANTED),
        ))
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    let effective = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi,
        LandlockStatus::NotEnabled => {
            return Err("not enabled at boot (add landlock to the lsm= kernel parameter)".into());
        }
        LandlockStatus::NotImplemented => {
            return Err("not supported by this kernel (Linux 5.13 or later)".into());
        }
    };
    match status.ruleset {
        RulesetStatus::NotEnforced => Err("not enforced by this kernel".into()),
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => {
            let abi = (effective as u32).min(WANTED as u32);
            Ok((abi, abi >= ABI::V6 as u32))
        }
    }
}
