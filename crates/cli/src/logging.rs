//! Logging through `tracing`. Stderr belongs to the program and the
//! progress bar, so logs go to stderr only when asked for with a filter
//! (`JAILTRACE_LOG`, falling back to `RUST_LOG`), or to `--log-file`.

use std::fs::File;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::cli::Global;

/// Keeps logging alive for the program's lifetime.
pub struct Guard;

pub fn init(global: &Global) -> anyhow::Result<Guard> {
    let filter = std::env::var("JAILTRACE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    match (&global.log_file, filter) {
        (Some(path), filter) => {
            let file = File::create(path)
                .with_context(|| format!("cannot create log file {}", path.display()))?;
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::new(filter.unwrap_or_else(|| "debug".into())))
                .with_writer(Mutex::new(file))
                .with_ansi(false)
                .init();
        }
        (None, Some(filter)) => {
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .init();
        }
        (None, None) => {}
    }
    Ok(Guard)
}
