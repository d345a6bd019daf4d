//! `jailtrace`: build a minimal chroot for a program by tracing what it
//! needs. This file only wires the command line to the commands; each
//! command lives in its own module.

#[macro_use]
mod out;

mod cli;
mod credentials;
mod doctor;
mod exit;
mod export;
mod generate;
mod inspect;
mod jail;
mod ldd;
mod logging;
mod mountns;
mod progress;
mod recorded;
mod rollback;
mod rootless;
mod run;
mod summary;
mod unit;
mod up;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // While jailtrace has one thread, so that every thread inherits it.
    jailtrace_tracer::reserve_sigchld();
    let cli = cli::Cli::parse();
    // Before anything else, while jailtrace has one thread.
    if rootless::wanted(&cli.command, cli.global().rootless) {
        if let Err(e) = rootless::enter() {
            return report(e);
        }
    } else if rootless::mounts_in_root(&cli.command) {
        mountns::enter();
    }
    // `run` waits for the namespace's ids itself, later, so that parsing,
    // finding the program and (into an empty root) the pre-seed overlap
    // newuidmap; the others write sooner.
    let settle_later =
        matches!(cli.command, cli::Command::Run(_)) && cli.global().log_file.is_none();
    if !settle_later {
        if let Err(e) = rootless::settle() {
            return report(e);
        }
    }
    let _guard = match logging::init(cli.global()) {
        Ok(guard) => guard,
        Err(e) => return report(e),
    };
    match dispatch(cli) {
        // A closed stdout is not an error (see `out`); any other failure
        // to write there is.
        Ok(code) => match out::take_stdout_error() {
            None => ExitCode::from(code),
            Some(e) => report(anyhow::Error::new(e).context("cannot write to stdout")),
        },
        Err(e) => report(e),
    }
}

fn dispatch(cli: cli::Cli) -> anyhow::Result<u8> {
    match cli.command {
        cli::Command::Run(args) => run::run(*args),
        cli::Command::Ldd(args) => ldd::ldd(args),
        cli::Command::Why(args) => inspect::why(args),
        cli::Command::Diff(args) => inspect::diff(args),
        cli::Command::Build(args) => jail::build(args),
        cli::Command::Verify(args) => jail::verify(args),
        cli::Command::Update(args) => jail::update(*args),
        cli::Command::Doctor(args) => doctor::doctor(*args),
        cli::Command::Export(args) => export::export(args),
        cli::Command::Up(args) => up::up(args),
        cli::Command::Completions(args) => generate::completions(args),
        cli::Command::Man(args) => generate::man(args),
    }
}

/// Prints `error: …` and its causes, one per line, and exits 1.
fn report(e: anyhow::Error) -> ExitCode {
    print_error(&e);
    ExitCode::from(exit::ERROR)
}

/// Prints `error: …` and its causes, one per line, on stderr.
fn print_error(e: &anyhow::Error) {
    errln!("error: {e}");
    for cause in e.chain().skip(1) {
        errln!("  caused by: {cause}");
    }
}
