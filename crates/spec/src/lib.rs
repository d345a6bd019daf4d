//! The description of a jail, before anything runs: how each program's
//! environment is made ([`env`]), the env files it reads ([`envfile`]),
//! and jail files, which describe a whole jail ([`jailfile`]). The command line turns its flags into these values; the
//! engine executes them without parsing anything.

pub mod env;
pub mod envfile;
pub mod jailfile;

pub use env::{Account, Base, EnvError, EnvSpec, Environment, Redacted};
pub use jailfile::{JailFile, JailFileError};
