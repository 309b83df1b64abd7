//! Namespaces and the mount table of the run.

use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::statvfs::{FsFlags, statvfs};

use crate::config::{Config, Network, Status};

/// The namespaces stage 1 got.
#[derive(Debug, Default, Clone)]
pub(crate) struct Namespaced {
    pub(crate) mount: bool,
    pub(crate) net: bool,
    /// Root's ids: the init stage creates the
    /// user namespace and this stage, still in the host's, maps every one of them into it.
    pub(crate) user_by_init: Option<Ids>,
}

/// Ids of a user namespace as `(first, count)` ranges.
pub(crate) type Ranges = Vec<(u32, u32)>;

/// The uids and the gids of a user namespace.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    pub(crate) uids: Ranges,
    pub(crate) gids: Ranges,
}

/// Enters new user (unless unavailable to root, who does not need it), mount, PID and network
/// namespaces, recording what it got in `status`.
pub(crate) fn enter_namespaces(config: &Config, status: &mut Status) -> Namespaced {
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
    // Root's run gets a user namespace too (its capabilities then count only inside it), but
    // made by the init stage and mapped from here with every id root has: a namespace can map
    // only its creator's own id, and with root alone mapped, files of other users (a tree
    // unpacked or mounted with its owner's uid) show as `nobody` and root's override of their
    // permissions is gone, so tests could not write the project they can write bare.
    if uid.is_root()
        && let Some((uids, gids)) =
            id_ranges("/proc/self/uid_map").zip(id_ranges("/proc/self/gid_map"))
        && unshare(flags).is_ok()
    {
        status.namespaces = names(false);
        return Namespaced {
            mount: true,
            net,
            user_by_init: Some(Ids { uids, gids }),
        };
    }
    // Everyone else: a user namespace first, then the rest inside it.
    match unshare(flags | CloneFlags::CLONE_NEWUSER) {
        Ok(()) => {
            if let Err(e) = write_id_maps(uid.as_raw(), gid.as_raw()) {
                status
                    .missing
                    .push(format!("uid/gid maps for the user namespace: {e}"));
            }
            status.namespaces = names(true);
            Namespaced {
                mount: true,
                net,
                user_by_init: None,
            }
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
                    Namespaced {
                        mount: true,
                        net,
                        user_by_init: None,
                    }
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

/// The ids of this process's user namespace, as `(first, count)` ranges (the first and third
/// fields of each line of `/proc/self/uid_map` or `gid_map`).
fn id_ranges(file: &str) -> Option<Ranges> {
    let text = std::fs::read_to_string(file).ok()?;
    let ranges: Ranges = text
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some((fields.first()?.parse().ok()?, fields.get(2)?.parse().ok()?))
        })
        .collect::<Option<_>>()?;
    (!ranges.is_empty()).then_some(ranges)
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
