//! The manifest entry for a step applied to a root: the one place that
//! says how a [`Step`] and what [`jailtrace_rootfs::Root::apply`] did become
//! an [`Entry`] (used by the engine while it traces, and by `update` when a
//! retargeted symlink leads to new files).

use jailtrace_manifest::{DeviceNumber, Entry, EntryKind, Mode, PathText, Reason};
use jailtrace_rootfs::{Applied, Sha256Sum, Step};

/// The entry recording `step`, applied as `applied`, placed for `reason`;
/// `setuid_stripped` when the policy removed setuid/setgid bits from the
/// step's mode (the mode recorded is the step's, stripped already). Waits
/// for a large copy's digest ([`entry_deferred`] does not).
pub fn entry_for(step: &Step, applied: &Applied, setuid_stripped: bool, reason: Reason) -> Entry {
    let (mut entry, pending) = entry_deferred(step, applied, setuid_stripped, reason);
    if let Some(sum) = pending {
        entry.sha256 = Some(sum.wait());
    }
    entry
}

/// [`entry_for`], without waiting: when a copy's digest is still being
/// computed, the entry has no `sha256` yet and the digest comes back to be
/// filled in later.
pub fn entry_deferred(
    step: &Step,
    applied: &Applied,
    setuid_stripped: bool,
    reason: Reason,
) -> (Entry, Option<Sha256Sum>) {
    let (kind, attrs) = match step {
        Step::Dir { attrs, .. } => (EntryKind::Dir, attrs),
        Step::Symlink { attrs, .. } => (EntryKind::Symlink, attrs),
        Step::File { attrs, .. } => (EntryKind::File, attrs),
        Step::Device { attrs, .. } => (EntryKind::Device, attrs),
    };
    let mode = Mode::from_st_mode(attrs.mode);
    let mut entry = Entry::new(step.path().into(), kind, mode, attrs.uid, attrs.gid, reason);
    entry.setuid_stripped = setuid_stripped;
    let mut pending = None;
    match (step, applied) {
        (Step::Symlink { target, .. }, _) => entry.target = Some(target.as_path().into()),
        (Step::Device { rdev, .. }, _) => entry.rdev = Some(device_number(*rdev)),
        (_, Applied::File(copied)) => {
            entry.size = Some(copied.bytes);
            entry.sha256 = copied.sha256.get();
            if entry.sha256.is_none() {
                pending = Some(copied.sha256.clone());
            }
            entry.hardlink_to = copied.hardlink_to.as_deref().map(PathText::from);
        }
        _ => {}
    }
    (entry, pending)
}

/// A `dev_t` as the manifest's major/minor pair.
pub(crate) fn device_number(rdev: u64) -> DeviceNumber {
    DeviceNumber {
        major: nix::sys::stat::major(rdev) as u32,
        minor: nix::sys::stat::minor(rdev) as u32,
    }
}
