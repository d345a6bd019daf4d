//! Static ELF dependency analysis: what the kernel and glibc's dynamic
//! loader would open to start a program, worked out without running it.
//!
//! - [`interpreter`]: the `PT_INTERP` of an ELF file or the `#!` line of a script;
//! - [`ElfInfo`]: class, machine, `DT_NEEDED`, `DT_RPATH`, `DT_RUNPATH`, `DT_SONAME`;
//! - [`ldcache`] and [`ldconf`]: glibc's `/etc/ld.so.cache` and `/etc/ld.so.conf`;
//! - [`closure`] / [`Resolver`]: every shared object a program needs, found
//!   in ld.so's search order, with the names nothing provides.
//!
//! Guarantees across the crate: no input, however corrupt, makes it panic;
//! paths and names stay byte-exact (`OsString`/`PathBuf`); nothing is
//! executed. The crate knows nothing of jails: it answers for whatever root
//! the paths it is given live in.

mod abi;
mod dst;
mod error;
mod info;
mod interp;
pub mod ldcache;
pub mod ldconf;
mod resolve;
mod source;
#[cfg(test)]
mod testelf;

pub use abi::machine_name;
pub use dst::split_search_path;
pub use error::{Error, Input};
pub use info::{parse, Class, ElfInfo, ELF_MAGIC};
pub use interp::{interpreter, interpreter_from_bytes, Interpreter};
pub use ldcache::LdCache;
pub use ldconf::read_ld_so_conf;
pub use resolve::{closure, Closure, ClosureOptions, Object, ObjectKind, Resolver};
