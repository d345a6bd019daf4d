//! Digests of copies still being hashed ([`jailtrace_rootfs::digest`]): a
//! large file's entry is recorded without its `sha256`, which is filled in
//! here when the manifest is made. Until then the hashing thread works
//! beside the runs; a run's state digest counts such an entry without
//! its hash.

use std::collections::HashMap;
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
    /// `entries`, found through `index` (the session's path index; an
    /// entry forgotten meanwhile needs none).
    pub(crate) fn settle(&mut self, entries: &mut [Entry], index: &HashMap<PathBuf, usize>) {
        for (path, sum) in std::mem::take(&mut self.0) {
            let hex = sum.wait();
            let entry = index.get(&path).map(|&i| &mut entries[i]);
            if let Some(entry) = entry.filter(|e| e.sha256.is_none()) {
                entry.sha256 = Some(hex);
            }
        }
    }
}
