//! aarch64 syscall numbers (include/uapi/asm-generic/unistd.h). The generic
//! table has only the `*at` forms: no open, stat, access, mkdir, readlink.

use super::Sysno;

pub(super) const TABLE: &[(Sysno, u64)] = &[
    (Sysno::Getxattr, 8),
    (Sysno::Lgetxattr, 9),
    (Sysno::Listxattr, 11),
    (Sysno::Llistxattr, 12),
    (Sysno::InotifyAddWatch, 27),
    (Sysno::Mkdirat, 34),
    (Sysno::Statfs, 43),
    (Sysno::Truncate, 45),
    (Sysno::Faccessat, 48),
    (Sysno::Chdir, 49),
    (Sysno::Chroot, 51),
    (Sysno::Openat, 56),
    (Sysno::Getdents64, 61),
    (Sysno::Readlinkat, 78),
    (Sysno::Ptrace, 117),
    (Sysno::Setregid, 143),
    (Sysno::Setgid, 144),
    (Sysno::Setreuid, 145),
    (Sysno::Setuid, 146),
    (Sysno::Setresuid, 147),
    (Sysno::Setresgid, 149),
    (Sysno::Newfstatat, 79),
    (Sysno::Bind, 200),
    (Sysno::Listen, 201),
    (Sysno::Connect, 203),
    (Sysno::Execve, 221),
    (Sysno::Execveat, 281),
    (Sysno::Statx, 291),
    (Sysno::IoUringSetup, 425),
    (Sysno::Openat2, 437),
    (Sysno::Faccessat2, 439),
];
