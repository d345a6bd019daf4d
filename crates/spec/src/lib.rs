//! The description of a jail, before anything runs: how each program's
//! environment is made ([`env`]), and the env files it reads
//! ([`envfile`]). The command line turns its flags into these values; the
//! engine executes them without parsing anything.

pub mod env;
pub mod envfile;

pub use env::{Account, Base, EnvError, EnvSpec, Environment, Redacted};
