//! Path syscalls as typed values.
//!
//! [`decode`] turns a syscall number and its six raw arguments into a
//! [`PathCall`]: which file the call names (a path relative to a directory
//! descriptor, a descriptor alone, or a unix socket address) and what the
//! call does with it. Flags that change which file is meant (`O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`) are folded into the target here,
//! so callers never look at raw flags again.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use nix::unistd::Pid;

use crate::arch::Sysno;
use crate::memory::{self, MemoryError, PATH_MAX};

/// Which file system object a call names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A path, relative paths taken from `dirfd` (`None`: the working
    /// directory). `follow` is false when a symlink in the last component is
    /// not followed (`lstat`, `O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `readlink`).
    Path {
        dirfd: Option<i32>,
        path: OsString,
        follow: bool,
    },
    /// The object an open descriptor refers to (`getdents64`, or an `*at`
    /// call with `AT_EMPTY_PATH` and an empty path).
    Fd(i32),
    /// A unix socket's path (`sun_path` of a `connect` or `bind`, or the
    /// destination of a `sendto` or `sendmsg`), relative paths taken from
    /// the working directory.
    Socket { path: OsString },
    /// An IPv4 or IPv6 address of a `connect` or `bind` on socket `fd`:
    /// not a file, but what a server binds is part of what its jail needs.
    Inet { fd: i32, addr: std::net::SocketAddr },
    /// The process a `ptrace` request names.
    Process(i32),
}

/// What the call does with its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `open`-family; `flags` are the `O_*` flags (from `open_how` for
    /// `openat2`).
    Open {
        flags: u64,
    },
    Exec,
    Access,
    Stat,
    Readlink,
    Chdir,
    /// Makes the target directory the task's root: its later paths are
    /// resolved below it (see [`crate::Tracee::resolve`]).
    Chroot,
    Uselib,
    Statfs,
    Truncate,
    /// Changes the target's mode, owner or times (`chmod`, `chown`,
    /// `utimensat` and their families): it needs the target as it is.
    Attr,
    /// Creates the target directory: only its parent must exist.
    Mkdir,
    Watch,
    Xattr,
    Connect,
    Bind,
    /// Marks the socket open on the descriptor as accepting connections.
    Listen,
    /// Sends a datagram to the unix socket at the target (`sendto` or
    /// `sendmsg` with a destination address: syslog's `/dev/log`). Sends
    /// without an address, or to an IP address, are not decoded.
    Send,
    /// A `ptrace` request: it fails under jailtrace (a task has one tracer,
    /// ptrace(2) EPERM), which the program's user should hear about.
    Ptrace {
        request: u64,
    },
    /// The task switches user or group ids (`setuid` … `setresgid`): the
    /// ids it asks for (`-1`, "unchanged", left out). A jail's account
    /// databases must name the users its programs run as.
    SetIds {
        group: bool,
        ids: [Option<u32>; 3],
    },
    /// Reads the entries of the directory open on the descriptor into the
    /// tracee's buffer at `buf`, `count` bytes long; `wide` for
    /// `getdents64`'s records (`struct linux_dirent64`), not `getdents`'s.
    List {
        buf: u64,
        count: u64,
        wide: bool,
    },
}

impl Op {
    /// True when the call creates its target rather than needing it: a
    /// directory made with `mkdir`, or a file opened to be written from
    /// scratch (`O_TRUNC`, or `O_CREAT` for writing only). Only the parent
    /// directory of such a target is needed.
    pub fn creates(self) -> bool {
        match self {
            Op::Mkdir | Op::Bind => true,
            Op::Open { flags } => {
                let accmode = flags & libc::O_ACCMODE as u64;
                let creat = flags & libc::O_CREAT as u64 != 0;
                let trunc = flags & libc::O_TRUNC as u64 != 0;
                accmode != libc::O_RDONLY as u64
                    && (trunc || (creat && accmode == libc::O_WRONLY as u64))
            }
            _ => false,
        }
    }
}

/// One path syscall of a tracee, decoded at its entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathCall {
    pub sysno: Sysno,
    pub op: Op,
    pub target: Target,
}

const AT_FDCWD: i32 = libc::AT_FDCWD;

fn dirfd(raw: u64) -> Option<i32> {
    let fd = raw as i32;
    (fd != AT_FDCWD).then_some(fd)
}

/// Decodes the call `sysno` made by `pid` with `args`, reading its path from
/// the tracee's memory. `Ok(None)` for calls that name no file (a `connect`
/// to an IP address, `io_uring_setup`).
pub fn decode(pid: Pid, sysno: Sysno, args: &[u64; 6]) -> Result<Option<PathCall>, MemoryError> {
    let path = |addr: u64| memory::read_cstring(pid, addr, PATH_MAX);
    let at = |dfd: u64, addr: u64, flags: u64, follow_flag: bool| -> Result<Target, MemoryError> {
        let p = path(addr)?;
        if p.is_empty() && flags & libc::AT_EMPTY_PATH as u64 != 0 {
            return Ok(Target::Fd(dfd as i32));
        }
        Ok(Target::Path {
            dirfd: dirfd(dfd),
            path: p,
            follow: follow_flag,
        })
    };
    let plain = |addr: u64, follow: bool| -> Result<Target, MemoryError> {
        Ok(Target::Path {
            dirfd: None,
            path: path(addr)?,
            follow,
        })
    };
    let nofollow = |flags: u64| flags & libc::AT_SYMLINK_NOFOLLOW as u64 == 0;
    let open_follow = |flags: u64| flags & libc::O_NOFOLLOW as u64 == 0;

    let call = |op, target| Ok(Some(PathCall { sysno, op, target }));
    match sysno {
        Sysno::Open => call(
            Op::Open { flags: args[1] },
            plain(args[0], open_follow(args[1]))?,
        ),
        Sysno::Creat => {
            let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
            call(Op::Open { flags }, plain(args[0], true)?)
        }
        Sysno::Openat => call(
            Op::Open { flags: args[2] },
            at(args[0], args[1], 0, open_follow(args[2]))?,
        ),
        Sysno::Openat2 => {
            // struct open_how { u64 flags; u64 mode; u64 resolve; }
            let mut how = [0u8; 8];
            let flags = u64::from_ne_bytes(
                memory::read_bytes(pid, args[2], &mut how)?
                    .try_into()
                    .expect("read_bytes fills the 8-byte buffer"),
            );
            call(
                Op::Open { flags },
                at(args[0], args[1], 0, open_follow(flags))?,
            )
        }
        Sysno::Execve => call(Op::Exec, plain(args[0], true)?),
        Sysno::Execveat => call(Op::Exec, at(args[0], args[1], args[4], nofollow(args[4]))?),
        Sysno::Access => call(Op::Access, plain(args[0], true)?),
        Sysno::Faccessat => call(Op::Access, at(args[0], args[1], 0, true)?),
        Sysno::Faccessat2 => call(
            Op::Access,
            at(args[0], args[1], args[3], nofollow(args[3]))?,
        ),
        Sysno::Stat => call(Op::Stat, plain(args[0], true)?),
        Sysno::Lstat => call(Op::Stat, plain(args[0], false)?),
        Sysno::Newfstatat => call(Op::Stat, at(args[0], args[1], args[3], nofollow(args[3]))?),
        Sysno::Statx => call(Op::Stat, at(args[0], args[1], args[2], nofollow(args[2]))?),
        Sysno::Readlink => call(Op::Readlink, plain(args[0], false)?),
        Sysno::Readlinkat => call(Op::Readlink, at(args[0], args[1], 0, false)?),
        Sysno::Chdir => call(Op::Chdir, plain(args[0], true)?),
        Sysno::Chroot => call(Op::Chroot, plain(args[0], true)?),
        Sysno::Uselib => call(Op::Uselib, plain(args[0], true)?),
        Sysno::Statfs => call(Op::Statfs, plain(args[0], true)?),
        Sysno::Truncate => call(Op::Truncate, plain(args[0], true)?),
        Sysno::Chmod | Sysno::Chown | Sysno::Utime | Sysno::Utimes => {
            call(Op::Attr, plain(args[0], true)?)
        }
        Sysno::Lchown => call(Op::Attr, plain(args[0], false)?),
        // fchmodat(dirfd, path, mode): the kernel takes no flags.
        Sysno::Fchmodat | Sysno::Futimesat => call(Op::Attr, at(args[0], args[1], 0, true)?),
        Sysno::Fchmodat2 => call(Op::Attr, at(args[0], args[1], args[3], nofollow(args[3]))?),
        // fchownat(dirfd, path, owner, group, flags)
        Sysno::Fchownat => call(Op::Attr, at(args[0], args[1], args[4], nofollow(args[4]))?),
        // utimensat(dirfd, path, times, flags); a NULL path is futimens(2)
        // of the descriptor.
        Sysno::Utimensat if args[1] == 0 => Ok(None),
        Sysno::Utimensat => call(Op::Attr, at(args[0], args[1], args[3], nofollow(args[3]))?),
        Sysno::Mkdir => call(Op::Mkdir, plain(args[0], false)?),
        Sysno::Mkdirat => call(Op::Mkdir, at(args[0], args[1], 0, false)?),
        Sysno::InotifyAddWatch => {
            let follow = args[2] & libc::IN_DONT_FOLLOW as u64 == 0;
            call(Op::Watch, plain(args[1], follow)?)
        }
        Sysno::Getxattr | Sysno::Listxattr => call(Op::Xattr, plain(args[0], true)?),
        Sysno::Lgetxattr | Sysno::Llistxattr => call(Op::Xattr, plain(args[0], false)?),
        Sysno::Connect | Sysno::Bind => {
            let op = if sysno == Sysno::Connect {
                Op::Connect
            } else {
                Op::Bind
            };
            let target = socket_target(pid, args[1], args[2])?.map(|t| match t {
                Target::Inet { addr, .. } => Target::Inet {
                    fd: args[0] as i32,
                    addr,
                },
                other => other,
            });
            Ok(target.map(|target| PathCall { sysno, op, target }))
        }
        Sysno::Listen => call(Op::Listen, Target::Fd(args[0] as i32)),
        // sendto(fd, buf, len, flags, dest_addr, addrlen)
        Sysno::Sendto => Ok(
            unix_destination(pid, args[4], args[5])?.map(|target| PathCall {
                sysno,
                op: Op::Send,
                target,
            }),
        ),
        Sysno::Sendmsg => {
            // struct msghdr starts { void *msg_name; socklen_t msg_namelen; }
            // on every 64-bit ABI the tracer decodes.
            if args[1] == 0 {
                return Ok(None);
            }
            let mut head = [0u8; 12];
            let head = memory::read_bytes(pid, args[1], &mut head)?;
            let name = u64::from_ne_bytes(head[..8].try_into().expect("an 8-byte slice"));
            let len = u32::from_ne_bytes(head[8..12].try_into().expect("a 4-byte slice"));
            Ok(
                unix_destination(pid, name, u64::from(len))?.map(|target| PathCall {
                    sysno,
                    op: Op::Send,
                    target,
                }),
            )
        }
        Sysno::Setuid
        | Sysno::Setgid
        | Sysno::Setreuid
        | Sysno::Setregid
        | Sysno::Setresuid
        | Sysno::Setresgid => {
            let group = matches!(sysno, Sysno::Setgid | Sysno::Setregid | Sysno::Setresgid);
            let count = match sysno {
                Sysno::Setuid | Sysno::Setgid => 1,
                Sysno::Setreuid | Sysno::Setregid => 2,
                _ => 3,
            };
            let mut ids = [None; 3];
            for (i, id) in ids.iter_mut().enumerate().take(count) {
                // uid_t is 32 bits; (uid_t)-1 means "leave unchanged".
                let raw = args[i] as u32;
                *id = (raw != u32::MAX).then_some(raw);
            }
            call(Op::SetIds { group, ids }, Target::Process(0))
        }
        Sysno::Ptrace => call(
            Op::Ptrace { request: args[0] },
            Target::Process(args[1] as i32),
        ),
        Sysno::Getdents | Sysno::Getdents64 => call(
            Op::List {
                buf: args[1],
                count: args[2],
                wide: sysno == Sysno::Getdents64,
            },
            Target::Fd(args[0] as i32),
        ),
        Sysno::IoUringSetup => Ok(None),
    }
}

/// The unix socket path a datagram is sent to (`sendto`, `sendmsg`);
/// `None` without an address (a connected socket) and for IP addresses
/// (a UDP datagram names no file).
fn unix_destination(pid: Pid, addr: u64, len: u64) -> Result<Option<Target>, MemoryError> {
    Ok(socket_target(pid, addr, len)?.filter(|t| matches!(t, Target::Socket { .. })))
}

/// The target named by the `sockaddr` at `addr` of `len` bytes: a unix
/// socket path, or an IPv4/IPv6 address; `None` for other families, unnamed
/// sockets and the abstract namespace (a leading NUL).
fn socket_target(pid: Pid, addr: u64, len: u64) -> Result<Option<Target>, MemoryError> {
    const FAMILY: usize = std::mem::size_of::<libc::sa_family_t>();
    let size = std::mem::size_of::<libc::sockaddr_un>();
    let len = (len as usize).min(size);
    if addr == 0 || len <= FAMILY {
        return Ok(None);
    }
    let mut buf = vec![0u8; len];
    let bytes = memory::read_bytes(pid, addr, &mut buf)?;
    let family = u16::from_ne_bytes([bytes[0], bytes[1]]);
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    Ok(match i32::from(family) {
        libc::AF_UNIX if bytes[FAMILY] != 0 => {
            let raw = &bytes[FAMILY..];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            Some(Target::Socket {
                path: OsString::from_vec(raw[..end].to_vec()),
            })
        }
        // struct sockaddr_in: family, port (big-endian), 4-byte address.
        libc::AF_INET if bytes.len() >= 8 => {
            let ip = std::net::Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            Some(Target::Inet {
                fd: -1,
                addr: (ip, port(bytes)).into(),
            })
        }
        // struct sockaddr_in6: family, port, flowinfo, 16-byte address.
        libc::AF_INET6 if bytes.len() >= 24 => {
            let octets: [u8; 16] = bytes[8..24].try_into().expect("a 16-byte slice");
            Some(Target::Inet {
                fd: -1,
                addr: (std::net::Ipv6Addr::from(octets), port(bytes)).into(),
            })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn me() -> Pid {
        nix::unistd::getpid()
    }

    #[test]
    fn decodes_openat_with_nofollow() {
        let p = CString::new("etc/passwd").unwrap();
        let flags = (libc::O_RDONLY | libc::O_NOFOLLOW) as u64;
        let args = [7, p.as_ptr() as u64, flags, 0, 0, 0];
        let call = decode(me(), Sysno::Openat, &args).unwrap().unwrap();
        assert_eq!(call.op, Op::Open { flags });
        assert_eq!(
            call.target,
            Target::Path {
                dirfd: Some(7),
                path: "etc/passwd".into(),
                follow: false
            }
        );
        assert!(!call.op.creates());
    }

    #[test]
    fn at_fdcwd_means_working_directory() {
        let p = CString::new("x").unwrap();
        let args = [libc::AT_FDCWD as i64 as u64, p.as_ptr() as u64, 0, 0, 0, 0];
        let call = decode(me(), Sysno::Openat, &args).unwrap().unwrap();
        assert!(matches!(call.target, Target::Path { dirfd: None, .. }));
    }

    #[test]
    fn changes_of_mode_owner_and_times_name_their_target() {
        let p = CString::new("etc/x").unwrap();
        let a = p.as_ptr() as u64;
        let nofollow = libc::AT_SYMLINK_NOFOLLOW as u64;
        let target = |dirfd, follow| Target::Path {
            dirfd,
            path: "etc/x".into(),
            follow,
        };
        for (sysno, args, want) in [
            (Sysno::Chmod, [a, 0o644, 0, 0, 0, 0], target(None, true)),
            (Sysno::Lchown, [a, 0, 0, 0, 0, 0], target(None, false)),
            (
                Sysno::Fchmodat,
                [5, a, 0o644, 0, 0, 0],
                target(Some(5), true),
            ),
            (
                Sysno::Fchmodat2,
                [5, a, 0o644, nofollow, 0, 0],
                target(Some(5), false),
            ),
            (
                Sysno::Fchownat,
                [5, a, 0, 0, nofollow, 0],
                target(Some(5), false),
            ),
            (Sysno::Utimensat, [5, a, 0, 0, 0, 0], target(Some(5), true)),
        ] {
            let call = decode(me(), sysno, &args).unwrap().unwrap();
            assert_eq!((call.op, call.target), (Op::Attr, want), "{sysno}");
        }
        // utimensat with no path is futimens(2) of the descriptor.
        assert_eq!(
            decode(me(), Sysno::Utimensat, &[5, 0, 0, 0, 0, 0]).unwrap(),
            None
        );
        // fchownat(fd, "", AT_EMPTY_PATH) is fchown(2).
        let empty = CString::new("").unwrap();
        let args = [
            5,
            empty.as_ptr() as u64,
            0,
            0,
            libc::AT_EMPTY_PATH as u64,
            0,
        ];
        let call = decode(me(), Sysno::Fchownat, &args).unwrap().unwrap();
        assert_eq!(call.target, Target::Fd(5));
    }

    #[test]
    fn empty_path_names_the_descriptor() {
        let p = CString::new("").unwrap();
        let args = [3, p.as_ptr() as u64, 0, libc::AT_EMPTY_PATH as u64, 0, 0];
        let call = decode(me(), Sysno::Newfstatat, &args).unwrap().unwrap();
        assert_eq!(call.target, Target::Fd(3));
    }

    #[test]
    fn creating_opens_need_only_their_parent() {
        let o = |f: i32| Op::Open { flags: f as u64 };
        assert!(o(libc::O_WRONLY | libc::O_CREAT).creates());
        assert!(o(libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND).creates());
        assert!(o(libc::O_RDWR | libc::O_TRUNC).creates());
        assert!(
            !o(libc::O_RDWR | libc::O_CREAT).creates(),
            "a database opened read-write is needed"
        );
        assert!(!o(libc::O_RDONLY).creates());
        assert!(!o(libc::O_RDONLY | libc::O_CREAT).creates());
        assert!(Op::Mkdir.creates());
    }

    #[test]
    fn unix_socket_paths() {
        let mut addr: libc::sockaddr_un = unsafe_zeroed();
        addr.sun_family = libc::AF_UNIX as u16;
        for (i, b) in b"/dev/log".iter().enumerate() {
            addr.sun_path[i] = *b as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as u64;
        let args = [3, &addr as *const _ as u64, len, 0, 0, 0];
        let call = decode(me(), Sysno::Connect, &args).unwrap().unwrap();
        assert_eq!(
            call.target,
            Target::Socket {
                path: "/dev/log".into()
            }
        );
        // Abstract namespace: no file.
        addr.sun_path[0] = 0;
        let args = [3, &addr as *const _ as u64, len, 0, 0, 0];
        assert_eq!(decode(me(), Sysno::Connect, &args).unwrap(), None);
    }

    fn unsafe_zeroed() -> libc::sockaddr_un {
        // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
        unsafe { std::mem::zeroed() }
    }
}

#[cfg(test)]
mod inet_tests {
    use super::*;

    #[test]
    fn inet_addresses_are_decoded() {
        let me = nix::unistd::getpid();
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 8080u16.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as u64;
        let call = decode(me, Sysno::Bind, &[3, &sin as *const _ as u64, len, 0, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!(call.op, Op::Bind);
        assert_eq!(
            call.target,
            Target::Inet {
                fd: 3,
                addr: "127.0.0.1:8080".parse().unwrap()
            }
        );
        // SAFETY: sockaddr_in6 is plain old data; all-zero is valid.
        let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        sin6.sin6_family = libc::AF_INET6 as u16;
        sin6.sin6_port = 443u16.to_be();
        sin6.sin6_addr.s6_addr[15] = 1;
        let len = std::mem::size_of::<libc::sockaddr_in6>() as u64;
        let call = decode(
            me,
            Sysno::Connect,
            &[3, &sin6 as *const _ as u64, len, 0, 0, 0],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            call.target,
            Target::Inet {
                fd: 3,
                addr: "[::1]:443".parse().unwrap()
            }
        );
    }
}
