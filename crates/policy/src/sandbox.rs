//! The `[sandbox]` section: how the code under test is confined (see `warden-sandbox`).

use serde::Deserialize;

use crate::error::InvalidPolicy;

/// How hard Warden insists on the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Every protection, or nothing runs (exit 5 naming what is missing).
    Required,
    /// What the kernel offers; the report names what is missing.
    BestEffort,
    /// No sandbox: tests run with all of Warden's user's rights.
    Off,
}

/// What the tests may reach on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxNetwork {
    /// A private network with no interface up.
    None,
    /// A private network with only `lo` up (127.0.0.1 works).
    Loopback,
    /// The host's network.
    Host,
}

/// The sandbox a run gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSettings {
    /// Insistence.
    pub mode: SandboxMode,
    /// Network reach.
    pub network: SandboxNetwork,
    /// Extra absolute paths the tests may read (the root, the interpreter and system
    /// directories always).
    pub read: Vec<String>,
    /// Extra absolute paths the tests may write (the root and a private temporary directory
    /// always).
    pub write: Vec<String>,
    /// Bytes of private memory each process may map; `None`: unlimited.
    pub memory_bytes: Option<u64>,
    /// Processes and threads the run may have at once; `None`: unlimited.
    pub processes: Option<u64>,
    /// The largest file a test may write, in bytes; `None`: unlimited.
    pub file_size_bytes: Option<u64>,
    /// Root-relative paths the tests may not write: the scopes of the policy's enabled `deny`
    /// rules for `fs`/`write` (Warden's own state and the policy file are added by the runner).
    pub protected: Vec<String>,
}

const MIB: u64 = 1024 * 1024;

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            mode: SandboxMode::Required,
            network: SandboxNetwork::Loopback,
            read: Vec::new(),
            write: Vec::new(),
            memory_bytes: Some(4096 * MIB),
            processes: Some(1024),
            file_size_bytes: Some(1024 * MIB),
            protected: Vec::new(),
        }
    }
}

/// `[sandbox]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SandboxFile {
    mode: Option<SandboxMode>,
    network: Option<SandboxNetwork>,
    read: Option<Vec<String>>,
    write: Option<Vec<String>>,
    /// Megabytes; 0 lifts the limit.
    memory_mb: Option<u64>,
    /// 0 lifts the limit.
    processes: Option<u64>,
    /// Megabytes; 0 lifts the limit.
    file_size_mb: Option<u64>,
}

pub(crate) fn settings(raw: SandboxFile) -> Result<SandboxSettings, InvalidPolicy> {
    let defaults = SandboxSettings::default();
    let paths = |key: &'static str, list: Option<Vec<String>>| {
        let list = list.unwrap_or_default();
        for path in &list {
            if !path.starts_with('/')
                || path.len() > 4096
                || path.chars().any(char::is_control)
                || path.split('/').any(|c| c == "..")
            {
                return Err(InvalidPolicy::BadSandbox {
                    key,
                    problem: format!(
                        "`{}` is not an absolute path without `..` and control characters",
                        path.escape_debug()
                    ),
                });
            }
        }
        Ok(list)
    };
    let limit = |value: Option<u64>, default: Option<u64>, unit: u64, key: &'static str| match value
    {
        None => Ok(default),
        Some(0) => Ok(None),
        Some(v) => v
            .checked_mul(unit)
            .map(Some)
            .ok_or(InvalidPolicy::BadSandbox {
                key,
                problem: format!("is {v}, too large"),
            }),
    };
    Ok(SandboxSettings {
        mode: raw.mode.unwrap_or(defaults.mode),
        network: raw.network.unwrap_or(defaults.network),
        read: paths("read", raw.read)?,
        write: paths("write", raw.write)?,
        memory_bytes: limit(raw.memory_mb, defaults.memory_bytes, MIB, "memory_mb")?,
        processes: limit(raw.processes, defaults.processes, 1, "processes")?,
        file_size_bytes: limit(
            raw.file_size_mb,
            defaults.file_size_bytes,
            MIB,
            "file_size_mb",
        )?,
        protected: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_required_loopback_with_limits() {
        let s = settings(SandboxFile::default()).unwrap();
        assert_eq!(s, SandboxSettings::default());
        assert_eq!(s.mode, SandboxMode::Required);
    }

    #[test]
    fn relative_paths_and_dotdot_are_rejected() {
        for bad in ["home/me", "/a/../b"] {
            let raw = SandboxFile {
                read: Some(vec![bad.into()]),
                ..SandboxFile::default()
            };
            assert!(settings(raw).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_lifts_a_limit() {
        let raw = SandboxFile {
            memory_mb: Some(0),
            ..SandboxFile::default()
        };
        assert_eq!(settings(raw).unwrap().memory_bytes, None);
    }
}
