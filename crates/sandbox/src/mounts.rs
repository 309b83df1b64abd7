//! Namespaces and the mount table of the run.

use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::statvfs::{FsFlags, statvfs};

use crate::config::{Config, Network, Status};
use crate::idmap::{self, Maps};

/// The namespaces stage 1 got.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Namespaced {
    pub(crate) mount: bool,
    pub(crate) net: bool,
}

/// Enters new user (unless unavailable to root, who does not need it), mount, PID and network
/// namespaces, recording what it got in `status`.
pub(crate) fn enter_namespaces(config: &Config, maps: Maps, status: &mut Status) -> Namespaced {
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    let net = config.network != Network::Host;
    if net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let names = |with_user: bool| {
        let mut names: Vec<String> = Vec::new();
        if with_user {
            names.push("user".into());
        }
        names.extend(["mount".into(), "pid".into()]);
        if net {
            names.push("net".into());
        }
        names
    };
    // A user namespace even for root: the run's capabilities then count only inside it, and its
    // rlimits are counted per namespace.
    match unshare(flags | CloneFlags::CLONE_NEWUSER) {
        Ok(()) => {
            let mapped = match maps {
                Maps::Own => write_id_maps(uid.as_raw(), gid.as_raw()),
                Maps::FromParent => match idmap::await_parent() {
                    Ok(true) => Ok(()),
                    Ok(false) => write_id_maps(uid.as_raw(), gid.as_raw()),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = mapped {
                status
                    .missing
                    .push(format!("uid/gid maps for the user namespace: {e}"));
            }
            status.namespaces = names(true);
            Namespaced { mount: true, net }
        }
        Err(user_err) => {
            // Without a user namespace a root run keeps root's capabilities on the host
            // (reboot, modules, raw devices): that is a missing protection, even if root can
            // still have the other namespaces.
            status.missing.push(format!(
                "a user namespace ({user_err}; unprivileged user namespaces may be disabled: sysctl user.max_user_namespaces / kernel.unprivileged_userns_clone)"
            ));
            if !uid.is_root() {
                return Namespaced::default();
            }
            match unshare(flags) {
                Ok(()) => {
                    status.namespaces = names(false);
                    Namespaced { mount: true, net }
                }
                Err(e) => {
                    status.missing.push(format!(
                        "mount, pid and network namespaces ({e}): processes that leave the group can outlive the run"
                    ));
                    Namespaced::default()
                }
            }
        }
    }
}

fn write_id_maps(uid: u32, gid: u32) -> std::io::Result<()> {
    // `deny` first: an unprivileged process may map its gid only after giving up setgroups.
    match std::fs::write("/proc/self/setgroups", "deny") {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))
}

/// Private propagation, read-only binds over Warden's state and the policy, a private
/// `/dev/shm`.
pub(crate) fn prepare(config: &Config, status: &mut Status) {
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        status
            .missing
            .push(format!("a private mount table (making / private: {e})"));
        return;
    }
    for path in &config.read_only {
        if !path.exists() {
            continue;
        }
        match bind_read_only(path) {
            Ok(()) => status.read_only.push(path.clone()),
            Err(e) => status
                .missing
                .push(format!("{} read-only: {e}", path.display())),
        }
    }
    if Path::new("/dev/shm").is_dir()
        && let Err(e) = mount(
            Some("tmpfs"),
            "/dev/shm",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        )
    {
        status.missing.push(format!("a private /dev/shm: {e}"));
    }
}

fn bind_read_only(path: &Path) -> nix::Result<()> {
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    // A remount inside a user namespace must keep the flags locked on the original mount.
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Ok(vfs) = statvfs(path) {
        let have = vfs.flags();
        for (fs, ms) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if have.contains(fs) {
                flags |= ms;
            }
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
}

/// A `/proc` that shows the run's PID namespace only (so no process outside it can even be
/// named). Must run inside the new PID namespace.
pub(crate) fn private_proc(status: &mut Status) {
    if let Err(e) = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        status.missing.push(format!(
            "a private /proc (the run sees the host's processes): {e}"
        ));
    }
}
