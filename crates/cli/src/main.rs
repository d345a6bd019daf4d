//! `jailtrace`: build a minimal chroot for a program by tracing what it
//! needs. This file only wires the command line to the commands; each
//! command lives in its own module.

mod cli;
mod exit;
mod inspect;
mod ldd;
mod logging;
mod progress;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let _guard = match logging::init(cli.global()) {
        Ok(guard) => guard,
        Err(e) => return report(e),
    };
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => report(e),
    }
}

fn dispatch(cli: cli::Cli) -> anyhow::Result<u8> {
    match cli.command {
        cli::Command::Run(args) => run::run(*args),
        cli::Command::Ldd(args) => ldd::ldd(args),
        cli::Command::Why(args) => inspect::why(args),
        cli::Command::Diff(args) => inspect::diff(args),
    }
}

/// Prints `error: …` and its causes, one per line, and exits 1.
fn report(e: anyhow::Error) -> ExitCode {
    print_error(&e);
    ExitCode::from(exit::ERROR)
}

/// Prints `error: …` and its causes, one per line, on stderr.
fn print_error(e: &anyhow::Error) {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
