//! Architectures and the path syscalls the tracer understands.
//!
//! Raw syscall numbers never leave this module: the rest of the crate speaks
//! [`Sysno`], and each architecture has one table mapping its numbers to it.
//! Both tables are always compiled, so the aarch64 numbers are unit-tested on
//! an x86_64 build machine too.

mod aarch64;
mod x86_64;

/// The ABI a syscall was made with, as the kernel's `AUDIT_ARCH_*` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

impl Arch {
    /// The architecture this tracer was built for (the only one it spawns).
    pub const fn native() -> Arch {
        #[cfg(target_arch = "aarch64")]
        {
            Arch::Aarch64
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            Arch::X86_64
        }
    }

    /// Decodes `seccomp_data.arch` / `ptrace_syscall_info.arch`; `None` for an
    /// ABI the tracer does not decode (i386 and x32 programs on x86_64, arm32).
    pub fn from_audit(audit: u32) -> Option<Arch> {
        match audit {
            AUDIT_ARCH_X86_64 => Some(Arch::X86_64),
            AUDIT_ARCH_AARCH64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    fn table(self) -> &'static [(Sysno, u64)] {
        match self {
            Arch::X86_64 => x86_64::TABLE,
            Arch::Aarch64 => aarch64::TABLE,
        }
    }

    /// The syscall a raw number names on this architecture, if it is one the
    /// tracer decodes.
    pub fn sysno(self, nr: u64) -> Option<Sysno> {
        // x32 syscalls on x86_64 carry bit 30; they are not decoded.
        self.table()
            .iter()
            .find(|(_, n)| *n == nr)
            .map(|(sysno, _)| *sysno)
    }

    /// The raw number of `sysno` on this architecture (`None` where the
    /// architecture lacks it, e.g. `open` on aarch64).
    pub fn number(self, sysno: Sysno) -> Option<u64> {
        self.table()
            .iter()
            .find(|(s, _)| *s == sysno)
            .map(|(_, n)| *n)
    }

    /// Every syscall of interest that this architecture has.
    pub fn traced(self) -> impl Iterator<Item = (Sysno, u64)> {
        self.table()
            .iter()
            .copied()
            .filter(|(s, _)| *s != Sysno::IoUringSetup)
    }
}

/// A syscall the tracer knows by name. Every one but `IoUringSetup` takes a
/// path (or a descriptor of a directory, or a socket address that can hold a
/// path); `IoUringSetup` is listed because the filter refuses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sysno {
    Open,
    Openat,
    Openat2,
    Creat,
    Execve,
    Execveat,
    Access,
    Faccessat,
    Faccessat2,
    Stat,
    Lstat,
    Newfstatat,
    Statx,
    Readlink,
    Readlinkat,
    Chdir,
    Chroot,
    Uselib,
    Statfs,
    Truncate,
    Chmod,
    Fchmodat,
    Fchmodat2,
    Chown,
    Lchown,
    Fchownat,
    Utime,
    Utimes,
    Futimesat,
    Utimensat,
    Mkdir,
    Mkdirat,
    InotifyAddWatch,
    Getxattr,
    Lgetxattr,
    Listxattr,
    Llistxattr,
    Connect,
    Bind,
    Listen,
    Sendto,
    Sendmsg,
    Ptrace,
    Setuid,
    Setgid,
    Setreuid,
    Setregid,
    Setresuid,
    Setresgid,
    Getdents,
    Getdents64,
    IoUringSetup,
}

impl Sysno {
    /// The syscall's name as strace and the man pages spell it.
    pub fn name(self) -> &'static str {
        match self {
            Sysno::Open => "open",
            Sysno::Openat => "openat",
            Sysno::Openat2 => "openat2",
            Sysno::Creat => "creat",
            Sysno::Execve => "execve",
            Sysno::Execveat => "execveat",
            Sysno::Access => "access",
            Sysno::Faccessat => "faccessat",
            Sysno::Faccessat2 => "faccessat2",
            Sysno::Stat => "stat",
            Sysno::Lstat => "lstat",
            Sysno::Newfstatat => "newfstatat",
            Sysno::Statx => "statx",
            Sysno::Readlink => "readlink",
            Sysno::Readlinkat => "readlinkat",
            Sysno::Chdir => "chdir",
            Sysno::Chroot => "chroot",
            Sysno::Uselib => "uselib",
            Sysno::Statfs => "statfs",
            Sysno::Truncate => "truncate",
            Sysno::Chmod => "chmod",
            Sysno::Fchmodat => "fchmodat",
            Sysno::Fchmodat2 => "fchmodat2",
            Sysno::Chown => "chown",
            Sysno::Lchown => "lchown",
            Sysno::Fchownat => "fchownat",
            Sysno::Utime => "utime",
            Sysno::Utimes => "utimes",
            Sysno::Futimesat => "futimesat",
            Sysno::Utimensat => "utimensat",
            Sysno::Mkdir => "mkdir",
            Sysno::Mkdirat => "mkdirat",
            Sysno::InotifyAddWatch => "inotify_add_watch",
            Sysno::Getxattr => "getxattr",
            Sysno::Lgetxattr => "lgetxattr",
            Sysno::Listxattr => "listxattr",
            Sysno::Llistxattr => "llistxattr",
            Sysno::Connect => "connect",
            Sysno::Bind => "bind",
            Sysno::Listen => "listen",
            Sysno::Sendto => "sendto",
            Sysno::Sendmsg => "sendmsg",
            Sysno::Ptrace => "ptrace",
            Sysno::Setuid => "setuid",
            Sysno::Setgid => "setgid",
            Sysno::Setreuid => "setreuid",
            Sysno::Setregid => "setregid",
            Sysno::Setresuid => "setresuid",
            Sysno::Setresgid => "setresgid",
            Sysno::Getdents => "getdents",
            Sysno::Getdents64 => "getdents64",
            Sysno::IoUringSetup => "io_uring_setup",
        }
    }
}

impl std::fmt::Display for Sysno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_one_to_one() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for (sysno, nr) in arch.table() {
                assert_eq!(arch.sysno(*nr), Some(*sysno), "{arch:?} {sysno}");
                assert_eq!(arch.number(*sysno), Some(*nr), "{arch:?} {sysno}");
            }
        }
    }

    #[test]
    fn aarch64_has_only_the_at_family() {
        for legacy in [
            Sysno::Open,
            Sysno::Stat,
            Sysno::Access,
            Sysno::Mkdir,
            Sysno::Readlink,
        ] {
            assert_eq!(Arch::Aarch64.number(legacy), None);
        }
        assert_eq!(Arch::Aarch64.number(Sysno::Openat), Some(56));
        assert_eq!(Arch::Aarch64.number(Sysno::Execve), Some(221));
        assert_eq!(Arch::Aarch64.number(Sysno::Newfstatat), Some(79));
        assert_eq!(Arch::Aarch64.number(Sysno::Openat2), Some(437));
    }

    /// On an x86_64 host the libc crate's constants cross-check the table.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_numbers_match_libc() {
        let expect = [
            (Sysno::Open, libc::SYS_open),
            (Sysno::Openat, libc::SYS_openat),
            (Sysno::Openat2, libc::SYS_openat2),
            (Sysno::Creat, libc::SYS_creat),
            (Sysno::Execve, libc::SYS_execve),
            (Sysno::Execveat, libc::SYS_execveat),
            (Sysno::Access, libc::SYS_access),
            (Sysno::Faccessat, libc::SYS_faccessat),
            (Sysno::Faccessat2, libc::SYS_faccessat2),
            (Sysno::Stat, libc::SYS_stat),
            (Sysno::Lstat, libc::SYS_lstat),
            (Sysno::Newfstatat, libc::SYS_newfstatat),
            (Sysno::Statx, libc::SYS_statx),
            (Sysno::Readlink, libc::SYS_readlink),
            (Sysno::Readlinkat, libc::SYS_readlinkat),
            (Sysno::Chdir, libc::SYS_chdir),
            (Sysno::Chroot, libc::SYS_chroot),
            (Sysno::Uselib, libc::SYS_uselib),
            (Sysno::Statfs, libc::SYS_statfs),
            (Sysno::Truncate, libc::SYS_truncate),
            (Sysno::Chmod, libc::SYS_chmod),
            (Sysno::Fchmodat, libc::SYS_fchmodat),
            (Sysno::Fchmodat2, libc::SYS_fchmodat2),
            (Sysno::Chown, libc::SYS_chown),
            (Sysno::Lchown, libc::SYS_lchown),
            (Sysno::Fchownat, libc::SYS_fchownat),
            (Sysno::Utime, libc::SYS_utime),
            (Sysno::Utimes, libc::SYS_utimes),
            (Sysno::Futimesat, libc::SYS_futimesat),
            (Sysno::Utimensat, libc::SYS_utimensat),
            (Sysno::Mkdir, libc::SYS_mkdir),
            (Sysno::Mkdirat, libc::SYS_mkdirat),
            (Sysno::InotifyAddWatch, libc::SYS_inotify_add_watch),
            (Sysno::Getxattr, libc::SYS_getxattr),
            (Sysno::Lgetxattr, libc::SYS_lgetxattr),
            (Sysno::Listxattr, libc::SYS_listxattr),
            (Sysno::Llistxattr, libc::SYS_llistxattr),
            (Sysno::Connect, libc::SYS_connect),
            (Sysno::Bind, libc::SYS_bind),
            (Sysno::Listen, libc::SYS_listen),
            (Sysno::Sendto, libc::SYS_sendto),
            (Sysno::Sendmsg, libc::SYS_sendmsg),
            (Sysno::Ptrace, libc::SYS_ptrace),
            (Sysno::Setuid, libc::SYS_setuid),
            (Sysno::Setgid, libc::SYS_setgid),
            (Sysno::Setreuid, libc::SYS_setreuid),
            (Sysno::Setregid, libc::SYS_setregid),
            (Sysno::Setresuid, libc::SYS_setresuid),
            (Sysno::Setresgid, libc::SYS_setresgid),
            (Sysno::Getdents, libc::SYS_getdents),
            (Sysno::Getdents64, libc::SYS_getdents64),
            (Sysno::IoUringSetup, libc::SYS_io_uring_setup),
        ];
        for (sysno, nr) in expect {
            assert_eq!(Arch::X86_64.number(sysno), Some(nr as u64), "{sysno}");
        }
        assert_eq!(expect.len(), x86_64::TABLE.len());
    }

    #[test]
    fn audit_round_trip() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            assert_eq!(Arch::from_audit(arch.audit()), Some(arch));
        }
        assert_eq!(Arch::from_audit(0x4000_0003), None); // i386
    }
}
