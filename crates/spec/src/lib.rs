//! The description of a jail, before anything runs: how each program's
//! environment is made ([`env`](mod@env)), the env files it reads ([`envfile`]),
//! jail files, which describe a whole jail ([`jailfile`]), the
//! directories the jail gets besides what the program reads: host
//! directories bound into it and directories made in it ([`dirs`]), when
//! a program counts as started ([`ready`]), and what is done to it then
//! ([`exercise`]); and systemd service units, read as one more source of
//! a program's description ([`unit`]).
//! The command line turns its flags into these values; the engine
//! executes them without parsing anything.

pub mod dirs;
pub mod env;
pub mod envfile;
pub mod exercise;
pub mod jailfile;
pub mod ready;
pub mod unit;

pub use dirs::{Bind, DirError, MkDir, NewDir};

pub use env::{Account, Base, EnvError, EnvSpec, Environment, Redacted};
pub use exercise::Exercise;
pub use jailfile::{JailFile, JailFileError};
pub use unit::{Unit, UnitError};
