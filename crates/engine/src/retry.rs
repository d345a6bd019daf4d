//! Before a retry run: what the verifying run missed goes into the root,
//! an ELF file with what a loader would load with it.

use std::path::{Path, PathBuf};

use jailtrace_manifest::Cause;
use jailtrace_rootfs::{self as rootfs, Follow};

use crate::session::{Observer, Placement, RunCounters, Session, Who};

impl Session {
    /// Before a retry run: place what the verifying run missed. Some misses
    /// happen only in a verifying run (a lookup that fails with the jail's
    /// own /etc/passwd tries the next NSS module), so the retry run alone
    /// would not see them.
    pub(crate) fn place_misses(
        &mut self,
        ld_library_path: &[PathBuf],
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        if self.read_only {
            return Ok(());
        }
        self.copying = true;
        // What it places counts for the retry (see `Drive::one_run`).
        self.counters = RunCounters::default();
        let opts = jailtrace_elf::ClosureOptions {
            ld_library_path: ld_library_path.to_vec(),
            ..Default::default()
        };
        for miss in std::mem::take(&mut self.misses) {
            let who = Who {
                pid: miss.pid,
                exe: miss.exe.clone(),
                syscall: miss.syscall,
                exercise: miss.exercise.clone(),
            };
            if self.placeholders.is_hollow(&miss.path) {
                // The verifying run read a file kept hollow: copy it now.
                self.fill(&miss.path, &who, observer)?;
                continue;
            }
            let placed = self.place(
                &miss.path,
                miss.follow,
                false,
                Cause::Accessed,
                &who,
                observer,
            )?;
            // A library (or program) the verifying run missed is loaded
            // with what it needs: those come with it, or the next verifying
            // run misses them one level at a time (an NSS module that only
            // a lookup the copying run answered from the host's databases
            // needs). The host is the system here, so the jail path is the
            // host's; only a regular file is read as ELF (opening a device
            // or a fifo on the host may block or act).
            let regular = || std::fs::metadata(&miss.path).is_ok_and(|m| m.is_file());
            if placed == Placement::Placed && self.host.base() == Path::new("/") && regular() {
                if let Ok(closure) = jailtrace_elf::closure(&miss.path, &opts) {
                    self.place_closure(closure, observer)?;
                }
            }
        }
        Ok(())
    }

    /// Places the objects of an ELF closure, each for the object that
    /// named it ([`Cause::Preseed`]: known to be needed, not asked for).
    pub(crate) fn place_closure(
        &mut self,
        closure: jailtrace_elf::Closure,
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        for object in closure.objects {
            let who = Who {
                exe: object.needed_by,
                ..Who::default()
            };
            self.place(
                &object.path,
                Follow::Yes,
                false,
                Cause::Preseed,
                &who,
                observer,
            )?;
        }
        Ok(())
    }
}
