//! The seccomp-bpf filter that makes tracing cheap.
//!
//! The traced program stops only at the path syscalls of [`Arch::traced`]
//! (`SECCOMP_RET_TRACE`) and runs at full speed through everything else.
//! `sendto` stops only with a destination address (its fifth argument not
//! NULL): a `send` on a connected socket, the common case, never stops.
//! `sendmsg` keeps its address inside the `msghdr`, which a filter cannot
//! read, so every `sendmsg` stops; the tracer reads 12 bytes of it and
//! resumes the task.
//! `io_uring_setup` fails with `ENOSYS`: io_uring can open files without a
//! syscall the tracer sees, and programs fall back to plain syscalls.
//!
//! The filters are built with `seccompiler`. Its programs kill a process
//! whose syscall comes from another ABI (i386 `int 0x80`, arm32); we put a
//! three-instruction guard in front that hands those to the tracer instead
//! (which lets them through), so 32-bit helpers still run.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::arch::{Arch, Sysno};

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the seccomp filter: {0}")]
pub struct FilterError(#[from] seccompiler::BackendError);

/// Compiled filters, installed in order by the child before `execve`.
#[derive(Debug, Clone)]
pub struct Filters {
    pub programs: Vec<BpfProgram>,
}

impl Filters {
    /// The filters for `arch`; the syscalls of `untraced` never stop.
    pub fn build(arch: Arch, untraced: &[Sysno]) -> Result<Filters, FilterError> {
        let target = match arch {
            Arch::X86_64 => TargetArch::x86_64,
            Arch::Aarch64 => TargetArch::aarch64,
        };
        let trace = arch
            .traced()
            .filter(|(sysno, _)| !untraced.contains(sysno))
            .map(|(sysno, nr)| Ok((nr as i64, rules(sysno)?)))
            .collect::<Result<BTreeMap<i64, Vec<_>>, FilterError>>()?;
        let trace =
            SeccompFilter::new(trace, SeccompAction::Allow, SeccompAction::Trace(0), target)?;
        let mut programs = vec![guard(
            arch,
            libc::SECCOMP_RET_TRACE,
            BpfProgram::try_from(trace)?,
        )];
        if let Some(nr) = arch.number(Sysno::IoUringSetup) {
            let deny = SeccompFilter::new(
                BTreeMap::from([(nr as i64, vec![])]),
                SeccompAction::Allow,
                SeccompAction::Errno(libc::ENOSYS as u32),
                target,
            )?;
            programs.push(guard(
                arch,
                libc::SECCOMP_RET_ALLOW,
                BpfProgram::try_from(deny)?,
            ));
        }
        Ok(Filters { programs })
    }
}

/// When a traced syscall stops: always (no rule), or when one rule holds.
fn rules(sysno: Sysno) -> Result<Vec<SeccompRule>, FilterError> {
    Ok(match sysno {
        // sendto(fd, buf, len, flags, dest_addr, addrlen): only with an
        // address.
        Sysno::Sendto => vec![SeccompRule::new(vec![SeccompCondition::new(
            4,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::Ne,
            0,
        )?])?],
        _ => vec![],
    })
}

// Classic BPF opcodes (linux/bpf_common.h): BPF_LD|BPF_W|BPF_ABS,
// BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K; and seccomp_data.arch's offset.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_DATA_ARCH: u32 = 4;

/// Prepends: if the syscall's ABI is not `arch`, return `foreign`.
fn guard(arch: Arch, foreign: u32, program: BpfProgram) -> BpfProgram {
    let mut out = vec![
        sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: SECCOMP_DATA_ARCH,
        },
        sock_filter {
            code: BPF_JMP_JEQ_K,
            jt: 1,
            jf: 0,
            k: arch.audit(),
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: foreign,
        },
    ];
    out.extend(program);
    out
}

/// Installs `program` on the calling thread without `PR_SET_NO_NEW_PRIVS`
/// (the caller has `CAP_SYS_ADMIN`; setuid programs in the jail keep
/// working). Async-signal-safe: called in the child before it execs.
///
/// With `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: the filter is there to trace,
/// not to confine, and on kernels whose default ties the Speculative Store
/// Bypass mitigation to seccomp (before 5.16) it would otherwise slow every
/// memory access of the program against its native run. A kernel that
/// refuses the flag (`EINVAL`, before 4.17) gets the filter without it.
pub(crate) fn install(program: &[sock_filter]) -> Result<(), nix::errno::Errno> {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        // sock_filter is #[repr(C)] with the same layout as libc's.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    let set = |flags: libc::c_ulong| {
        // SAFETY: `prog` points at `program`, which outlives the call; the
        // kernel copies the filter and keeps no pointer to it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        nix::errno::Errno::result(rc).map(drop)
    };
    match set(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) {
        Err(nix::errno::Errno::EINVAL) => set(0),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_for_both_architectures() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let f = Filters::build(arch, &[]).unwrap();
            assert_eq!(f.programs.len(), 2);
            // The guard names the architecture and hands foreign ABIs on.
            assert_eq!(f.programs[0][1].k, arch.audit());
            assert_eq!(f.programs[0][2].k, libc::SECCOMP_RET_TRACE);
            assert_eq!(f.programs[1][2].k, libc::SECCOMP_RET_ALLOW);
            // Every traced number appears in the trace filter.
            for (_, nr) in arch.traced() {
                assert!(
                    f.programs[0]
                        .iter()
                        .any(|i| i.code == BPF_JMP_JEQ_K && i.k == nr as u32),
                    "{arch:?} {nr}"
                );
            }
        }
    }
}
