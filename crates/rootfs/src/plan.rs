//! Planning what a root needs so that a jail path resolves in it as it does
//! on the host, as a list of typed [`Step`]s (bubblewrap's `SetupOp` idea),
//! and [`Root::apply`] to carry out one step.
//!
//! [`plan`] only reads: it walks the host one component at a time, the way
//! the kernel would resolve the path (`.` skipped, `..` to the parent but
//! never above `/`, at most 40 symlinks), and emits a step for every entry
//! on the way that the root lacks: a directory with the host's mode, owner
//! and mtime, each symlink followed (with its target spliced into the rest
//! of the walk: absolute targets restart at `/`, relative ones at the
//! link's directory), and the final file, device, empty directory or (with
//! [`Follow::No`]) symlink. Steps come in an order in which they can be
//! applied; no step is emitted for an entry the root already has, and the
//! same path is never emitted twice. Whether the root "has" an entry is
//! [`Root::lstat`] of the same jail path.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::resolve::{self, MAX_SYMLINKS};
use crate::{Attrs, Copied, Error, Host, Kind, Meta, Root};

/// Whether a symlink at the last component is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Follow it (`open`, `stat`, `execve`).
    Yes,
    /// Do not (`lstat`, `readlink`, `O_NOFOLLOW`).
    No,
}

/// One thing to create in the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An (empty) directory.
    Dir {
        /// Jail path.
        path: PathBuf,
        /// The host directory's mode, owner, mtime.
        attrs: Attrs,
    },
    /// A symlink with the host's target (verbatim).
    Symlink {
        /// Jail path.
        path: PathBuf,
        /// The target as stored on the host.
        target: PathBuf,
        /// The host link's owner and mtime.
        attrs: Attrs,
    },
    /// A copy of the host's regular file at the same jail path.
    File {
        /// Jail path.
        path: PathBuf,
        /// The host file's mode, owner, mtime.
        attrs: Attrs,
        /// Its size on the host.
        size: u64,
        /// Host device and inode (for hard links).
        host_dev: u64,
        /// Host inode number.
        host_ino: u64,
        /// Host link count.
        nlink: u64,
    },
    /// A device node (applying a block device fails: they are refused).
    Device {
        /// Jail path.
        path: PathBuf,
        /// The host node's mode, owner, mtime.
        attrs: Attrs,
        /// Device number.
        rdev: u64,
        /// Whether it is a block device.
        block: bool,
    },
}

impl Step {
    /// The jail path this step creates.
    pub fn path(&self) -> &Path {
        match self {
            Step::Dir { path, .. }
            | Step::Symlink { path, .. }
            | Step::File { path, .. }
            | Step::Device { path, .. } => path,
        }
    }
}

/// How the walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The root already has everything: no steps.
    Present,
    /// Applying the steps makes the path resolve.
    Placed,
    /// This jail path does not exist on the host; the steps lead up to it.
    AbsentOnHost {
        /// The missing jail path (after symlinks).
        at: PathBuf,
    },
    /// This jail path is not a directory on the host but the walk needed
    /// to go through it (or, for [`plan_parent`], end at a directory).
    NotADirectory {
        /// The offending jail path.
        at: PathBuf,
    },
    /// More than 40 symlinks.
    Loop,
    /// The host has a fifo or socket here; it is not copied.
    Special {
        /// Jail path.
        at: PathBuf,
        /// What it is.
        kind: Kind,
    },
}

/// The result of planning a jail path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What to create, in order.
    pub steps: Vec<Step>,
    /// How the walk ended.
    pub outcome: Outcome,
    /// The jail path the walk ended at, after symlinks.
    pub resolved: PathBuf,
}

/// What [`Root::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Made a directory (or it was there).
    Dir,
    /// Made a symlink (or an identical one was there).
    Symlink,
    /// Copied a file, or hard-linked it to an earlier copy.
    File(Copied),
    /// Made a character device (or the same one was there).
    Device,
}

/// Plans the steps that make `p` resolve in `root` as on `host`.
pub fn plan(root: &Root, host: &Host, p: &Path, follow: Follow) -> Result<Plan, Error> {
    host.prefetch_owners(&[p]);
    Walk::new(root, host).run(p, follow, false)
}

/// Plans the steps that make the *parent directory* of `p` exist in `root`
/// (for a program that creates `p` itself). `p`'s last component is not
/// looked at; a parent that is not a directory on the host ends in
/// [`Outcome::NotADirectory`].
pub fn plan_parent(root: &Root, host: &Host, p: &Path) -> Result<Plan, Error> {
    let parent = match resolve::split_last(p) {
        Some((parent, _)) => parent,
        None => p.to_path_buf(),
    };
    host.prefetch_owners(&[&parent]);
    Walk::new(root, host).run(&parent, Follow::Yes, true)
}

struct Walk<'a> {
    root: &'a Root,
    host: &'a Host,
    steps: Vec<Step>,
    seen: HashSet<PathBuf>,
    /// A path this walk found absent from the root: whatever is below it
    /// is absent too, without a lookup.
    absent: Option<PathBuf>,
    /// A directory the root has with no symlink on the way: each of its
    /// prefixes is present, without a lookup.
    present: Option<PathBuf>,
}

impl<'a> Walk<'a> {
    fn new(root: &'a Root, host: &'a Host) -> Walk<'a> {
        Walk {
            root,
            host,
            steps: Vec::new(),
            seen: HashSet::new(),
            absent: None,
            present: None,
        }
    }

    /// Adds `step` unless it was added already or the root has its path.
    fn add(&mut self, step: Step) -> Result<(), Error> {
        if self.seen.contains(step.path())
            || self
                .present
                .as_deref()
                .is_some_and(|d| d.starts_with(step.path()))
        {
            return Ok(());
        }
        let below_absent = self
            .absent
            .as_deref()
            .is_some_and(|a| step.path().starts_with(a));
        if below_absent || self.root.lstat(step.path())?.is_none() {
            if !below_absent {
                self.absent = Some(step.path().to_path_buf());
            }
            self.seen.insert(step.path().to_path_buf());
            self.steps.push(step);
        }
        Ok(())
    }

    fn finish(self, outcome: Option<Outcome>, resolved: PathBuf) -> Plan {
        let outcome = outcome.unwrap_or(if self.steps.is_empty() {
            Outcome::Present
        } else {
            Outcome::Placed
        });
        Plan {
            steps: self.steps,
            outcome,
            resolved,
        }
    }

    fn run(mut self, p: &Path, follow: Follow, want_dir: bool) -> Result<Plan, Error> {
        let mut queue: VecDeque<OsString> = resolve::components(p)
            .into_iter()
            .map(|c| c.to_owned())
            .collect();
        // Most paths a program misses are in a directory the root has
        // already: one lookup of that directory answers for every prefix.
        // Else a lookup of each ancestor, from the deepest, finds the one
        // the root has and the first entry it lacks below it.
        let plain = queue.iter().all(|c| c != "." && c != "..");
        let dir = if want_dir {
            Some(resolve::jail_path(queue.make_contiguous()))
        } else {
            resolve::split_last(p).map(|(parent, _)| parent)
        };
        if let Some((present, absent)) = dir
            .filter(|_| plain)
            .and_then(|d| self.root.deepest_plain_dir(&d))
        {
            self.present = Some(present).filter(|d| d.parent().is_some());
            self.absent = absent;
        }
        // The directories walked so far: a jail path free of symlinks.
        let mut dirs: Vec<OsString> = Vec::new();
        let mut links = 0usize;
        while let Some(c) = queue.pop_front() {
            if c == "." {
                continue;
            }
            if c == ".." {
                dirs.pop();
                continue;
            }
            let is_last = queue.is_empty();
            dirs.push(c);
            let here = resolve::jail_path(&dirs);
            let Some(m) = self.host.lstat(&here)? else {
                return Ok(self.finish(Some(Outcome::AbsentOnHost { at: here.clone() }), here));
            };
            match m.kind {
                Kind::Dir => {
                    self.add(Step::Dir {
                        path: here,
                        attrs: m.attrs(),
                    })?;
                    continue;
                }
                Kind::Symlink if !is_last || follow == Follow::Yes => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Ok(self.finish(Some(Outcome::Loop), here));
                    }
                    let target = self.host.readlink(&here)?;
                    if target.as_os_str().is_empty() {
                        return Ok(
                            self.finish(Some(Outcome::AbsentOnHost { at: here.clone() }), here)
                        );
                    }
                    self.add(Step::Symlink {
                        path: here,
                        target: target.clone(),
                        attrs: m.attrs(),
                    })?;
                    dirs.pop();
                    if target.has_root() {
                        dirs.clear();
                    }
                    for t in resolve::components(&target).into_iter().rev() {
                        queue.push_front(t.to_owned());
                    }
                    continue;
                }
                _ if !is_last || want_dir => {
                    return Ok(self.finish(Some(Outcome::NotADirectory { at: here.clone() }), here));
                }
                _ => {}
            }
            // The last component, not a directory and not followed.
            let special = self.last(&here, &m)?;
            return Ok(self.finish(special, here));
        }
        Ok(self.finish(None, resolve::jail_path(&dirs)))
    }

    /// The step for a last component that is not a directory; `Some` outcome
    /// for a fifo or socket.
    fn last(&mut self, here: &Path, m: &Meta) -> Result<Option<Outcome>, Error> {
        let path = here.to_path_buf();
        let attrs = m.attrs();
        let step = match m.kind {
            Kind::Symlink => Step::Symlink {
                path,
                target: self.host.readlink(here)?,
                attrs,
            },
            Kind::File => Step::File {
                path,
                attrs,
                size: m.size,
                host_dev: m.dev,
                host_ino: m.ino,
                nlink: m.nlink,
            },
            Kind::CharDevice | Kind::BlockDevice => Step::Device {
                path,
                attrs,
                rdev: m.rdev,
                block: m.kind == Kind::BlockDevice,
            },
            // `run` never passes a directory here; listing it keeps the match
            // exhaustive without a panic.
            Kind::Fifo | Kind::Socket | Kind::Dir => {
                return Ok(Some(Outcome::Special {
                    at: path,
                    kind: m.kind,
                }));
            }
        };
        self.add(step)?;
        Ok(None)
    }
}

impl Root {
    /// Carries out one planned step. Steps for entries that appeared in the
    /// meantime are fine when the entry is what the step would make (a
    /// directory, the same symlink, the same character device); otherwise
    /// [`Error::Exists`].
    pub fn apply(&mut self, host: &Host, step: &Step) -> Result<Applied, Error> {
        match step {
            Step::Dir { path, attrs } => self.mkdir(path, attrs).map(|_| Applied::Dir),
            Step::Symlink {
                path,
                target,
                attrs,
            } => self.symlink(path, target, attrs).map(|()| Applied::Symlink),
            Step::File { path, attrs, .. } => self.copy_file(path, host, attrs).map(Applied::File),
            Step::Device {
                path, block: true, ..
            } => Err(Error::BlockDevice { path: path.clone() }),
            Step::Device {
                path, attrs, rdev, ..
            } => self.mknod(path, attrs, *rdev).map(|()| Applied::Device),
        }
    }
}
