//! Digests of copies still being hashed ([`jailtrace_rootfs::digest`]): a
//! large file's entry is recorded without its `sha256`, which is filled in
//! here before anything reads the entries whole (a run's state digest,
//! the manifest).

use std::path::{Path, PathBuf};

use jailtrace_manifest::Entry;
use jailtrace_rootfs::Sha256Sum;

/// The entries whose digest is to come, by path.
#[derive(Debug, Default)]
pub(crate) struct Pending(Vec<(PathBuf, Sha256Sum)>);

impl Pending {
    /// Remembers that the entry at `path` gets `sum`, when there is one.
    pub(crate) fn add(&mut self, path: &Path, sum: Option<Sha256Sum>) {
        if let Some(sum) = sum {
            self.0.push((path.to_path_buf(), sum));
        }
    }

    /// Waits for the digests to come and puts each in its entry of
    /// `entries` (one that was forgotten meanwhile needs none).
    pub(crate) fn settle(&mut self, entries: &mut [Entry]) {
        for (path, sum) in std::mem::take(&mut self.0) {
            let hex = sum.wait();
            let entry = entries
                .iter_mut()
                .find(|e| e.path.as_path() == path && e.sha256.is_none());
            if let Some(entry) = entry {
                entry.sha256 = Some(hex);
            }
        }
    }
}
