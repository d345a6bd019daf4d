//! What glibc's loader knows about each ABI at build time, Debian flavour.
//!
//! For an object's (ELF class, machine) pair this gives the Debian multiarch
//! triplet (which names the system library directories and what `$LIB`
//! expands to), the `$PLATFORM` string the kernel passes in `AT_PLATFORM`,
//! and the `ld.so.cache` entry flags the loader accepts
//! (`_dl_cache_check_flags` in glibc's `sysdeps/*/dl-cache.h`).
//! An ABI missing from the table still resolves, through `/lib` and
//! `/usr/lib` only and without the cache.

use std::path::PathBuf;

use goblin::elf::header::{EM_386, EM_AARCH64, EM_RISCV, EM_X86_64};

use crate::Class;

// Cache entry flags from glibc's `elf/ldconfig.h` / `sysdeps/generic/ldconfig.h`.
const FLAG_ELF: i32 = 0x0001;
const FLAG_ELF_LIBC6: i32 = 0x0003;
const FLAG_X8664_LIB64: i32 = 0x0300;
const FLAG_X8664_LIBX32: i32 = 0x0800;
const FLAG_AARCH64_LIB64: i32 = 0x0a00;
const FLAG_RISCV_FLOAT_ABI_DOUBLE: i32 = 0x1000;

/// The loader's build-time knowledge for one ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Abi {
    /// Debian multiarch triplet, e.g. `x86_64-linux-gnu`.
    pub triplet: Option<&'static str>,
    /// `AT_PLATFORM`, the value of `$PLATFORM`.
    pub platform: Option<&'static str>,
    /// `ld.so.cache` entry flags that fit this ABI, best first.
    pub cache_flags: &'static [i32],
}

impl Abi {
    /// The ABI of objects with this class and `e_machine`.
    pub fn of(class: Class, machine: u16) -> Abi {
        let (triplet, platform, cache_flags): (_, _, &'static [i32]) = match (class, machine) {
            (Class::Elf64, EM_X86_64) => (
                Some("x86_64-linux-gnu"),
                Some("x86_64"),
                &[FLAG_X8664_LIB64 | FLAG_ELF_LIBC6],
            ),
            (Class::Elf32, EM_X86_64) => (
                Some("x86_64-linux-gnux32"),
                Some("x86_64"),
                &[FLAG_X8664_LIBX32 | FLAG_ELF_LIBC6],
            ),
            (Class::Elf32, EM_386) => (
                Some("i386-linux-gnu"),
                Some("i686"),
                &[FLAG_ELF_LIBC6, FLAG_ELF],
            ),
            (Class::Elf64, EM_AARCH64) => (
                Some("aarch64-linux-gnu"),
                Some("aarch64"),
                &[FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6],
            ),
            (Class::Elf64, EM_RISCV) => (
                Some("riscv64-linux-gnu"),
                None,
                &[FLAG_RISCV_FLOAT_ABI_DOUBLE | FLAG_ELF_LIBC6],
            ),
            _ => (None, None, &[]),
        };
        Abi {
            triplet,
            platform,
            cache_flags,
        }
    }

    /// What `$LIB` expands to: `lib/<triplet>` on Debian, else `lib`.
    pub fn lib_dst(&self) -> String {
        match self.triplet {
            Some(triplet) => format!("lib/{triplet}"),
            None => "lib".to_owned(),
        }
    }

    /// The loader's built-in search directories, in order.
    pub fn default_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::with_capacity(4);
        if let Some(triplet) = self.triplet {
            dirs.push(PathBuf::from(format!("/lib/{triplet}")));
            dirs.push(PathBuf::from(format!("/usr/lib/{triplet}")));
        }
        dirs.push(PathBuf::from("/lib"));
        dirs.push(PathBuf::from("/usr/lib"));
        dirs
    }
}

/// A short name for an ELF `e_machine` value, e.g. `X86_64`, for messages.
pub fn machine_name(machine: u16) -> &'static str {
    goblin::elf::header::machine_to_str(machine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_dirs_and_dsts() {
        let abi = Abi::of(Class::Elf64, EM_X86_64);
        assert_eq!(abi.lib_dst(), "lib/x86_64-linux-gnu");
        assert_eq!(abi.platform, Some("x86_64"));
        assert_eq!(
            abi.default_dirs(),
            [
                "/lib/x86_64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu",
                "/lib",
                "/usr/lib"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(abi.cache_flags, &[0x0303]);
    }

    #[test]
    fn aarch64_and_i386_and_unknown() {
        let arm = Abi::of(Class::Elf64, EM_AARCH64);
        assert_eq!(
            arm.default_dirs()[0],
            PathBuf::from("/lib/aarch64-linux-gnu")
        );
        assert_eq!(arm.cache_flags, &[0x0a03]);
        let x86 = Abi::of(Class::Elf32, EM_386);
        assert_eq!(x86.lib_dst(), "lib/i386-linux-gnu");
        assert!(x86.cache_flags.contains(&0x0003));
        let unknown = Abi::of(Class::Elf64, 0x7fff);
        assert_eq!(
            unknown.default_dirs(),
            ["/lib", "/usr/lib"].map(PathBuf::from)
        );
        assert!(unknown.cache_flags.is_empty());
        assert_eq!(machine_name(EM_X86_64), "X86_64");
    }
}
