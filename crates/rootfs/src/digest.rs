//! The SHA-256 of a copied file, computed from the very bytes the copy
//! wrote, off the copying thread for large files.
//!
//! Hashing runs at about 1 GB/s here (SHA-NI), as fast as the copy itself:
//! inline, it doubled the time a discovering run spends placing a large
//! program (a JVM copies 173 MB). So a copy of [`PARALLEL_FROM`] bytes or
//! more hands each chunk it wrote to one hashing thread and goes on; the
//! digest is a [`Sha256Sum`] that is ready once the thread has hashed the
//! last chunk. The thread is started by [`start`] before the tracer binds
//! itself to one CPU (`jailtrace_tracer`'s `pin.rs`), so it keeps the
//! caller's CPUs and hashes beside the traced program. A bounded queue
//! keeps at most [`IN_FLIGHT`] chunks in memory: a copy faster than the
//! hashing waits.
//!
//! Small files are hashed inline: handing them over costs more than
//! hashing them. The thread blocks every signal: the tracer reads its
//! signals from a signalfd, which needs them blocked in every thread.

use std::fmt;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// Files this large or larger are hashed on the hashing thread.
pub(crate) const PARALLEL_FROM: u64 = 256 * 1024;

/// How many chunks a copy may have handed over and not yet hashed.
const IN_FLIGHT: usize = 32;

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

/// Chunks the hashing thread is done with, kept for the next copies (a
/// fresh 128 KiB allocation is mapped and zeroed by the kernel each time).
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// One file for the hashing thread: its chunks, in order, until the
/// sender is dropped; then the digest goes into `sum`.
struct Job {
    chunks: Receiver<Vec<u8>>,
    sum: Sha256Sum,
}

static THREAD: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();

/// Starts the hashing thread, once per process (see the module comment for
/// why before the tracer binds itself to a CPU). Without it, or when the
/// thread cannot be started, copies hash inline.
pub fn start() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    THREAD.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        // Signals are for the tracer's thread, which reads SIGCHLD from a
        // signalfd: a thread that did not block them would take them. The
        // new thread inherits the mask blocked here for the spawn.
        let mut old = SigSet::empty();
        let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old));
        let thread = std::thread::Builder::new()
            .name("jailtrace-sha256".into())
            .spawn(move || {
                for job in queue {
                    let mut hasher = Sha256::new();
                    for chunk in job.chunks {
                        hasher.update(&chunk);
                        if let Ok(mut spare) = SPARE.lock() {
                            if spare.len() < IN_FLIGHT {
                                spare.push(chunk);
                            }
                        }
                    }
                    job.sum.set(format!("{:x}", hasher.finalize()));
                }
            });
        if blocked.is_ok() {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        }
        // Without a blocked mask the thread could steal signals: inline.
        (blocked.is_ok() && thread.is_ok()).then_some(jobs)
    });
}

/// Hashes what one copy writes: inline, or chunk by chunk on the hashing
/// thread for a file of `size` bytes or more than [`PARALLEL_FROM`].
pub(crate) enum Hashing {
    Inline(Sha256),
    Thread {
        chunks: SyncSender<Vec<u8>>,
        sum: Sha256Sum,
    },
}

impl Hashing {
    pub(crate) fn new(size: u64) -> Hashing {
        let thread = THREAD.get().and_then(Option::as_ref);
        if let (true, Some(jobs)) = (size >= PARALLEL_FROM, thread) {
            let (chunks, receiver) = mpsc::sync_channel(IN_FLIGHT);
            let sum = Sha256Sum(Arc::new(Slot::default()));
            let job = Job {
                chunks: receiver,
                sum: sum.clone(),
            };
            if jobs.send(job).is_ok() {
                return Hashing::Thread { chunks, sum };
            }
        }
        Hashing::Inline(Sha256::new())
    }

    /// The next bytes of the file. Fails only when the hashing thread is
    /// gone, which it never is while the process lives.
    pub(crate) fn update(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Hashing::Inline(hasher) => hasher.update(bytes),
            Hashing::Thread { chunks, .. } => {
                let mut chunk = SPARE
                    .lock()
                    .ok()
                    .and_then(|mut spare| spare.pop())
                    .unwrap_or_default();
                chunk.clear();
                chunk.extend_from_slice(bytes);
                chunks
                    .send(chunk)
                    .map_err(|_| std::io::Error::other("jailtrace's hashing thread is gone"))?;
            }
        }
        Ok(())
    }

    /// The digest, ready or to come.
    pub(crate) fn finish(self) -> Sha256Sum {
        match self {
            Hashing::Inline(hasher) => Sha256Sum::ready(format!("{:x}", hasher.finalize())),
            Hashing::Thread { sum, .. } => sum,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hashing_thread_hashes_what_it_is_handed_in_order() {
        start();
        let data: Vec<u8> = (0..PARALLEL_FROM as u32 * 3)
            .map(|i| (i % 253) as u8)
            .collect();
        let mut hashing = Hashing::new(data.len() as u64);
        assert!(matches!(hashing, Hashing::Thread { .. }));
        for chunk in data.chunks(100_000) {
            hashing.update(chunk).unwrap();
        }
        let sum = hashing.finish();
        assert_eq!(sum.wait(), format!("{:x}", Sha256::digest(&data)));
        // A small file is hashed inline, ready at once.
        let mut small = Hashing::new(10);
        small.update(b"foo").unwrap();
        assert_eq!(
            small.finish().get().as_deref(),
            Some("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")
        );
    }
}
