//! The SHA-256 of a copied file, off the copying thread for all but
//! small files.
//!
//! Hashing runs at about 1 GB/s here (SHA-NI), no faster than the copy
//! itself: inline, it doubled the time a discovering run spends placing a
//! large program (a JVM copies 173 MB). So a file of [`PARALLEL_FROM`]
//! bytes or more is copied by the kernel (`copy_file_range` or
//! `sendfile`, see `copy.rs`) without passing through jailtrace's memory,
//! and handed to one hashing thread as it is: a descriptor of the source
//! and the data ranges the copy wrote (a hole hashes as the zeros it reads
//! as). The thread reads those ranges back from the page cache, where the
//! copy just left them, and hashes them beside the traced program; the
//! digest is a [`Sha256Sum`] that is ready once it has. The copy never
//! waits for the hashing, and the traced program, whose stop waited for
//! the copy, goes on sooner.
//!
//! Hashing the source rather than the bytes the copy wrote means that a
//! host file rewritten in place between its copy and its hashing gets the
//! digest of its new bytes, which `jailtrace verify` then reports as a
//! change, as a file that changed while it was copied deserves. A
//! file replaced by another (a package upgrade renames one over it) is
//! still read through the descriptor of the one copied.
//!
//! The thread is started by [`start`] before the tracer binds itself to
//! one CPU (`jailtrace_tracer`'s `pin.rs`), so it keeps the caller's CPUs;
//! the engine has it give way to the traced program there. At most
//! [`IN_FLIGHT`] files (and their descriptors) wait for it; a copy that
//! finds the queue full hashes its file itself rather than wait for a
//! thread that a busy program may leave little CPU. The thread blocks every signal: the tracer reads its signals
//! from a signalfd, which needs them blocked in every thread.
//!
//! Small files are copied through our buffer and hashed on the way:
//! handing them over costs more than hashing them.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// Files this large or larger are hashed on the hashing thread.
pub(crate) const PARALLEL_FROM: u64 = 256 * 1024;

/// How many files the copies may have handed over and not yet hashed.
const IN_FLIGHT: usize = 64;

/// How much of a file the hashing thread reads at a time.
const READ_CHUNK: usize = 128 * 1024;

/// A file's SHA-256 (lowercase hex), ready or still being computed.
#[derive(Clone)]
pub struct Sha256Sum(Arc<Slot>);

#[derive(Default)]
struct Slot {
    hex: Mutex<Option<String>>,
    done: Condvar,
}

impl Sha256Sum {
    /// A digest known already.
    pub fn ready(hex: String) -> Sha256Sum {
        let slot = Slot::default();
        *slot.hex.lock().unwrap_or_else(|e| e.into_inner()) = Some(hex);
        Sha256Sum(Arc::new(slot))
    }

    /// The digest, when it is ready.
    pub fn get(&self) -> Option<String> {
        self.0.hex.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The digest, waiting for the hashing thread when needed.
    pub fn wait(&self) -> String {
        let mut hex = self.0.hex.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(hex) = &*hex {
                return hex.clone();
            }
            hex = self.0.done.wait(hex).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn set(&self, hex: String) {
        *self.0.hex.lock().unwrap_or_else(|e| e.into_inner()) = Some(hex);
        self.0.done.notify_all();
    }
}

impl PartialEq for Sha256Sum {
    fn eq(&self, other: &Self) -> bool {
        self.wait() == other.wait()
    }
}

impl Eq for Sha256Sum {}

impl fmt::Debug for Sha256Sum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(hex) => write!(f, "{hex}"),
            None => f.write_str("(being hashed)"),
        }
    }
}

/// One file for the hashing thread: its `size` bytes are the `data`
/// ranges (offset, length; in order, not overlapping) of `src`, zeros
/// elsewhere.
struct Job {
    src: File,
    data: Vec<(u64, u64)>,
    size: u64,
    sum: Sha256Sum,
}

impl Job {
    fn hash(self, buf: &mut [u8]) {
        let mut hasher = Sha256::new();
        let mut pos = 0;
        for (offset, len) in self.data.iter().copied().chain([(self.size, 0)]) {
            hash_zeros(&mut hasher, offset.saturating_sub(pos));
            pos = pos.max(offset);
            let end = offset + len;
            while pos < end {
                let want = usize::try_from(end - pos).map_or(buf.len(), |n| n.min(buf.len()));
                match self.src.read_at(&mut buf[..want], pos) {
                    Ok(0) => break,
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        pos += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // The source went away under us: the digest of what
                    // was read, which `verify` will find differs.
                    Err(_) => break,
                }
            }
        }
        self.sum.set(format!("{:x}", hasher.finalize()));
    }
}

/// What a hole is hashed as.
static ZEROS: [u8; READ_CHUNK] = [0; READ_CHUNK];

fn hash_zeros(hasher: &mut Sha256, mut n: u64) {
    while n > 0 {
        let k = usize::try_from(n).map_or(READ_CHUNK, |n| n.min(READ_CHUNK));
        hasher.update(&ZEROS[..k]);
        n -= k as u64;
    }
}

static THREAD: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();

/// Starts the hashing thread, once per process (see the module comment for
/// why before the tracer binds itself to a CPU), which first calls
/// `setup` (the engine lowers its priority). Without it, or when the
/// thread cannot be started, copies hash inline.
pub fn start(setup: fn()) {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    THREAD.get_or_init(|| {
        let (jobs, queue) = mpsc::sync_channel::<Job>(IN_FLIGHT);
        // Signals are for the tracer's thread, which reads SIGCHLD from a
        // signalfd: a thread that did not block them would take them. The
        // new thread inherits the mask blocked here for the spawn.
        let mut old = SigSet::empty();
        let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old));
        let thread = std::thread::Builder::new()
            .name("jailtrace-sha256".into())
            .spawn(move || {
                setup();
                let mut buf = vec![0; READ_CHUNK];
                for job in queue {
                    job.hash(&mut buf);
                }
            });
        if blocked.is_ok() {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        }
        // Without a blocked mask the thread could steal signals: inline.
        (blocked.is_ok() && thread.is_ok()).then_some(jobs)
    });
}

/// How one copy's digest is made: inline from the bytes it copies, or on
/// the hashing thread from the data ranges it wrote, for a file of
/// [`PARALLEL_FROM`] bytes or more.
pub(crate) enum Hashing {
    Inline(Sha256),
    Thread { data: Vec<(u64, u64)> },
}

impl Hashing {
    pub(crate) fn new(size: u64) -> Hashing {
        let thread = THREAD.get().is_some_and(Option::is_some);
        if size >= PARALLEL_FROM && thread {
            Hashing::Thread { data: Vec::new() }
        } else {
            Hashing::Inline(Sha256::new())
        }
    }

    /// Whether the copy must hand over the bytes it copies
    /// ([`Hashing::bytes`], [`Hashing::zeros`]).
    pub(crate) fn inline(&self) -> bool {
        matches!(self, Hashing::Inline(_))
    }

    /// The next bytes of the file, inline.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        if let Hashing::Inline(hasher) = self {
            hasher.update(bytes);
        }
    }

    /// The next `n` bytes of the file are a hole, inline.
    pub(crate) fn zeros(&mut self, n: u64) {
        if let Hashing::Inline(hasher) = self {
            hash_zeros(hasher, n);
        }
    }

    /// The copy wrote `len` bytes at `offset` (after the ranges before).
    pub(crate) fn wrote(&mut self, offset: u64, len: u64) {
        if let Hashing::Thread { data } = self {
            match data.last_mut() {
                Some((o, l)) if *o + *l == offset => *l += len,
                _ => data.push((offset, len)),
            }
        }
    }

    /// The digest of the `size` bytes copied from `src`: ready, or to come
    /// from the hashing thread; computed here when [`IN_FLIGHT`] files are
    /// ahead of it already.
    pub(crate) fn finish(self, src: &File, size: u64) -> io::Result<Sha256Sum> {
        match self {
            Hashing::Inline(hasher) => Ok(Sha256Sum::ready(format!("{:x}", hasher.finalize()))),
            Hashing::Thread { data } => {
                let sum = Sha256Sum(Arc::new(Slot::default()));
                let job = Job {
                    src: src.try_clone()?,
                    data,
                    size,
                    sum: sum.clone(),
                };
                let Some(Some(jobs)) = THREAD.get() else {
                    return Err(io::Error::other("jailtrace's hashing thread is gone"));
                };
                match jobs.try_send(job) {
                    Ok(()) => {}
                    // The thread is behind (it gives way to the traced
                    // program, which may keep every CPU busy): hashing
                    // here costs what waiting for it would, at most.
                    Err(TrySendError::Full(job)) => job.hash(&mut vec![0; READ_CHUNK]),
                    Err(TrySendError::Disconnected(_)) => {
                        return Err(io::Error::other("jailtrace's hashing thread is gone"))
                    }
                }
                Ok(sum)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hashing_thread_hashes_the_ranges_written_and_zeros_between() {
        start(|| {});
        // Data, a hole, data, and a hole at the end.
        let size = PARALLEL_FROM * 3;
        let mut want = vec![0u8; size as usize];
        let ranges = [(0u64, 70_000u64), (300_000, PARALLEL_FROM)];
        let file = tempfile::tempfile().unwrap();
        file.set_len(size).unwrap();
        for (offset, len) in ranges {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8 + 1).collect();
            file.write_all_at(&bytes, offset).unwrap();
            want[offset as usize..(offset + len) as usize].copy_from_slice(&bytes);
        }
        let mut hashing = Hashing::new(size);
        assert!(!hashing.inline());
        // Adjacent ranges, as a copy in chunks reports them.
        hashing.wrote(0, 50_000);
        hashing.wrote(50_000, 20_000);
        hashing.wrote(300_000, PARALLEL_FROM);
        assert!(matches!(&hashing, Hashing::Thread { data } if data.len() == 2));
        let sum = hashing.finish(&file, size).unwrap();
        assert_eq!(sum.wait(), format!("{:x}", Sha256::digest(&want)));

        // A small file is hashed inline from the bytes handed over, ready
        // at once.
        let mut small = Hashing::new(10);
        assert!(small.inline());
        small.bytes(b"fo");
        small.zeros(1);
        assert_eq!(
            small.finish(&file, 3).unwrap().get(),
            Some(format!("{:x}", Sha256::digest(b"fo\0")))
        );
    }
}
