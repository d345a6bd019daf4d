//! The description of a jail, before anything runs: how each program's
//! environment is made ([`env`]), the env files it reads ([`envfile`]),
//! jail files, which describe a whole jail ([`jailfile`]), and the
//! directories the jail gets besides what the program reads: host
//! directories bound into it and directories made in it ([`dirs`]).
//! The command line turns its flags into these values; the engine
//! executes them without parsing anything.

pub mod dirs;
pub mod env;
pub mod envfile;
pub mod jailfile;

pub use dirs::{Bind, DirError, MkDir, NewDir};

pub use env::{Account, Base, EnvError, EnvSpec, Environment, Redacted};
pub use jailfile::{JailFile, JailFileError};
