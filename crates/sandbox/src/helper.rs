//! The helper mode: `warden __sandbox-exec CONFIG -- COMMAND...`.
//!
//! It runs as a fresh, single-threaded process (the caller dispatches to [`main`] before it
//! starts any runtime), because `unshare(CLONE_NEWUSER)` refuses threaded callers. Two stages:
//!
//! 1. **Outside** (the process Warden spawned): new user, mount, PID and (unless the network is
//!    `host`) network namespaces in one `unshare`; identity uid/gid maps, so files keep their
//!    owners; mounts made private, Warden's state and the policy bound read-only, a private
//!    `/dev/shm`; `lo` up. Then it starts stage 2 (itself again, as PID 1 of the new PID
//!    namespace) and waits for it.
//! 2. **Init** (PID 1 inside): a parent-death signal (so killing stage 1 kills the namespace), a
//!    fresh `/proc` that shows only the run, rlimits and the namespace's `pid_max`, Landlock
//!    (file system, signal and abstract-socket scopes); it writes the [`Status`], waits for the
//!    caller's word if the configuration asks for it ([`Config::gate`]), and starts the
//!    command (its standard input `/dev/null`), reaping every orphan until the command exits.
//!    When PID 1 exits the kernel kills everything left in the namespace: a child that called
//!    `setsid`, re-forks, or scrubbed its environment included.
//!
//! For root, stage 1 leaves the user namespace out of its `unshare` and the init stage makes
//! it once `/proc` and `pid_max` are set (they need the host's root); stage 1, still in the
//! host's user namespace, then maps every id root has into it (a namespace can map only its
//! creator's own id, and with root alone mapped, other users' files show as `nobody`, beyond
//! root's override of their permissions). The init stage announces its namespace in its
//! process name and waits for the maps.
//!
//! The command's exit code passes through both stages; death by signal `S` becomes exit code
//! `128 + S` in stage 2 and is re-raised as `S` by stage 1.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;

use crate::config::{Config, Mode, Network, Status};
use crate::{landlock_rules, limits, mounts, netlink, userns};

/// The hidden subcommand of the `warden` binary that runs this helper.
pub const HELPER_ARG: &str = "__sandbox-exec";

/// The helper's exit code when it refused to run the command (or could not start it); the
/// status file says why.
pub const EXIT_REFUSED: i32 = 125;

const INIT_FLAG: &str = "--init";
/// The init stage creates the run's user namespace (and stage 1 maps it); see
/// [`userns::enter_mapped_by_parent`].
const INIT_USERNS_FLAG: &str = "--init-userns";

/// Runs the helper on the arguments after [`HELPER_ARG`]; returns the exit code. Call it first
/// thing in `main`, before any thread exists.
pub fn main(args: Vec<OsString>) -> i32 {
    let (init, userns, rest) = match args.first() {
        Some(flag) if flag == INIT_FLAG => (true, false, &args[1..]),
        Some(flag) if flag == INIT_USERNS_FLAG => (true, true, &args[1..]),
        _ => (false, false, &args[..]),
    };
    let Some(sep) = rest.iter().position(|a| a == "--") else {
        eprintln!("warden-sandbox: usage: {HELPER_ARG} CONFIG -- COMMAND...");
        return EXIT_REFUSED;
    };
    let (head, command) = (&rest[..sep], &rest[sep + 1..]);
    if command.is_empty() || head.is_empty() {
        eprintln!("warden-sandbox: usage: {HELPER_ARG} CONFIG -- COMMAND...");
        return EXIT_REFUSED;
    }
    let config: Config = match head[0].to_str().map(serde_json::from_str) {
        Some(Ok(config)) => config,
        _ => {
            eprintln!("warden-sandbox: the configuration is not valid JSON");
            return EXIT_REFUSED;
        }
    };
    if init {
        let status: Status = match head
            .get(1)
            .and_then(|s| s.to_str())
            .map(serde_json::from_str)
        {
            Some(Ok(status)) => status,
            _ => {
                eprintln!("warden-sandbox: the stage-1 status is missing");
                return EXIT_REFUSED;
            }
        };
        stage_init(&config, status, userns, command)
    } else {
        stage_outside(&config, command)
    }
}

fn stage_outside(config: &Config, command: &[OsString]) -> i32 {
    // Warden's SIGINT/SIGTERM at the deadline are for pytest (same process group): this stage
    // waits them out instead of dying first and taking the namespace down with it (its
    // parent-death signal). Blocked, not ignored, and unblocked again by the init stage before
    // it starts pytest: `Command` passes the signal mask on to what it starts.
    let stop = stop_signals();
    let _ = stop.thread_block();
    let mut status = Status::new(config);
    let namespaced = mounts::enter_namespaces(config, &mut status);
    if namespaced.mount {
        mounts::prepare(config, &mut status);
    }
    match config.network {
        Network::Loopback if namespaced.net => {
            if let Err(e) = netlink::loopback_up() {
                status.missing.push(format!(
                    "loopback in the private network: cannot bring lo up: {e}"
                ));
            }
        }
        Network::None | Network::Loopback if !namespaced.net => {
            status
                .missing
                .push("a private network namespace (the run has the host's network)".into());
        }
        _ => {}
    }
    // Made before the init stage starts, so that its opens never wait.
    let handshake = match &namespaced.user_by_init {
        Some(_) => match userns::Parent::create(&config.status_file) {
            Ok(parent) => Some(parent),
            Err(e) => {
                status.missing.push(format!(
                    "a user namespace (the helper's stages cannot talk: {e})"
                ));
                None
            }
        },
        None => None,
    };
    if config.mode == Mode::Required && !status.missing.is_empty() {
        return refuse(config, status);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            status.refused = Some(format!("cannot find the warden binary again: {e}"));
            return write_refusal(config, &status);
        }
    };
    let Ok(status_json) = serde_json::to_string(&status) else {
        return EXIT_REFUSED;
    };
    let Ok(config_json) = serde_json::to_string(config) else {
        return EXIT_REFUSED;
    };
    // The init stage mounts the run's `/proc` over the host's in the mount namespace both
    // stages share: opened now, the host's stays reachable to map the init stage.
    let host_proc = match handshake {
        Some(_) => File::open("/proc").ok(),
        None => None,
    };
    let spawned = Command::new(exe)
        .arg(HELPER_ARG)
        .arg(if handshake.is_some() {
            INIT_USERNS_FLAG
        } else {
            INIT_FLAG
        })
        .arg(config_json)
        .arg(status_json)
        .arg("--")
        .args(command)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            status.refused = Some(format!("cannot start the sandbox's init: {e}"));
            return write_refusal(config, &status);
        }
    };
    if let (Some(parent), Some(proc), Some(ids)) = (handshake, &host_proc, &namespaced.user_by_init)
        && let Err(e) = parent.map(proc, child.id(), ids)
    {
        // The init stage refuses on its own when its maps do not come.
        eprintln!("warden-sandbox: cannot map the run's user namespace: {e}");
    }
    match child.wait() {
        Ok(exit) => match exit.code() {
            Some(code) if code > 128 => {
                if let Ok(signal) = Signal::try_from(code - 128) {
                    // Die the way the command died, so Warden sees the signal.
                    let _ = nix::sys::signal::raise(signal);
                    let _ = stop.thread_unblock();
                }
                code
            }
            Some(code) => code,
            None => 128 + std::os::unix::process::ExitStatusExt::signal(&exit).unwrap_or(0),
        },
        Err(_) => EXIT_REFUSED,
    }
}

fn stage_init(config: &Config, mut status: Status, userns: bool, command: &[OsString]) -> i32 {
    // If stage 1 dies (Warden killed it at the deadline), so does this namespace.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let own_pid_namespace = status.namespaces.iter().any(|n| n == "pid");
    if own_pid_namespace && status.namespaces.iter().any(|n| n == "mount") {
        mounts::private_proc(&mut status);
    }
    limits::apply(&config.limits, own_pid_namespace, &mut status);
    if userns {
        userns::enter_mapped_by_parent(&config.status_file, &mut status);
    }
    // Opened before Landlock, which would refuse it afterwards: the command cannot write it.
    let mut status_file = match File::create(&config.status_file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "warden-sandbox: cannot write the status file {}: {e}",
                config.status_file.display()
            );
            return EXIT_REFUSED;
        }
    };
    landlock_rules::restrict(config, &mut status);
    if config.mode == Mode::Required && !status.missing.is_empty() {
        status.refused = Some(status.missing.join("; "));
    }
    status.enforced = status.missing.is_empty() && status.refused.is_none();
    let written = serde_json::to_vec(&status)
        .ok()
        .map(|json| status_file.write_all(&json).is_ok())
        .unwrap_or(false);
    drop(status_file);
    if !written || status.refused.is_some() {
        if let Some(reason) = &status.refused {
            eprintln!("warden-sandbox: refused: {reason}");
        }
        return EXIT_REFUSED;
    }
    run_as_init(config, command)
}

/// Starts the command and reaps every process that ends up parented to PID 1 until the command
/// itself exits.
fn run_as_init(config: &Config, command: &[OsString]) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    // Stage 1's block came down to this stage with its mask; left in place it would reach
    // pytest, and Warden's SIGINT at the deadline (pytest's report of the tests before a hang)
    // and SIGTERM would never arrive. As PID 1 of its namespace this stage is still spared the
    // signals it has no handler for.
    let _ = stop_signals().thread_unblock();
    if config.gate && !word_arrived() {
        eprintln!("warden-sandbox: the run was called off before it started");
        return EXIT_REFUSED;
    }
    let child = match Command::new(&command[0])
        .args(&command[1..])
        .current_dir(&config.root)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "warden-sandbox: cannot start {}: {e}",
                Path::new(&command[0]).display()
            );
            // What `sh` reports for a command not found, so Warden's message stays the same.
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return code,
            Ok(WaitStatus::Signaled(p, signal, _)) if p == pid => return 128 + signal as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return EXIT_REFUSED,
        }
    }
}

/// Waits for the caller's word on standard input (see [`Config::gate`]): `false` at end of
/// file, when the caller closed the pipe or died.
fn word_arrived() -> bool {
    let mut word = [0u8; 1];
    loop {
        match std::io::stdin().lock().read(&mut word) {
            Ok(n) => return n == 1,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

fn stop_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(signal);
    }
    set
}

fn refuse(config: &Config, mut status: Status) -> i32 {
    status.refused = Some(status.missing.join("; "));
    write_refusal(config, &status)
}

fn write_refusal(config: &Config, status: &Status) -> i32 {
    if let Ok(json) = serde_json::to_vec(status) {
        let _ = std::fs::write(&config.status_file, json);
    }
    if let Some(reason) = &status.refused {
        eprintln!("warden-sandbox: refused: {reason}");
    }
    EXIT_REFUSED
}
