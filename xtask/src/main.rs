//! `cargo xtask`: Warden's repository chores, written in Rust rather than shell scripts.
//!
//! - `cargo xtask test`: the whole test suite (what CI runs): a Python virtualenv with pytest,
//!   then fmt, the boundary audit, clippy, tests, docs and benchmark builds.
//! - `cargo xtask boundary`: the governance boundary audit.
//! - `cargo xtask demo`: Warden on the bundled example project, doubling as a smoke test.
//! - `cargo xtask bench`: Warden side by side with bare pytest and a naive runner, as a table.
//! - `cargo xtask suites`: real projects' suites (PyPI sdists) under bare pytest and Warden:
//!   identical counts, a stable fingerprint, and the time compared.

mod bench;
mod boundary;
mod demo;
mod process;
mod suites;
mod test;
mod venv;

use std::process::ExitCode;

use camino::Utf8Path;
use clap::{Parser, Subcommand};

/// Warden's repository chores.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Chore,
}

#[derive(Debug, Subcommand)]
enum Chore {
    /// Check that only the facade depends on the governance crate, and does not re-export it
    /// wholesale (rules: [workspace.metadata.boundary] in the root Cargo.toml).
    Boundary,
    /// Run the whole test suite: venv, fmt, boundary, clippy, tests, docs, benchmark builds.
    Test,
    /// Show `warden` deciding requests against examples/demo; fails on any surprise.
    Demo,
    /// Benchmark Warden against bare pytest and a naive runner; writes target/bench/results.md.
    Bench(bench::BenchArgs),
    /// Real projects' test suites (PyPI sdists) under bare pytest and under Warden: counts,
    /// fingerprints and times compared; writes target/suites/results.md. Needs PyPI once.
    Suites(suites::SuitesArgs),
}

#[derive(Debug, thiserror::Error)]
enum XtaskError {
    #[error(transparent)]
    Boundary(#[from] boundary::BoundaryError),
    #[error(transparent)]
    Test(#[from] test::TestError),
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    #[error(transparent)]
    Bench(#[from] bench::BenchError),
    #[error(transparent)]
    Suites(#[from] suites::SuitesError),
}

/// The workspace root: xtask's own manifest sits one level below it.
fn project_root() -> &'static Utf8Path {
    let manifest_dir = Utf8Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = project_root();
    let result: Result<(), XtaskError> = match cli.command {
        Chore::Boundary => boundary::run(root).map_err(Into::into),
        Chore::Test => test::run(root).map_err(Into::into),
        Chore::Demo => demo::run(root).map_err(Into::into),
        Chore::Bench(args) => bench::run(root, &args).map_err(Into::into),
        Chore::Suites(args) => suites::run(root, &args).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Every message already names its cause, so the source chain is not repeated.
            eprintln!("xtask: error: {error}");
            ExitCode::FAILURE
        }
    }
}
