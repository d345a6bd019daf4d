//! Resolving a path inside a root directory the way a process chrooted into
//! it would, without ever leaving it.
//!
//! Guarantees: links are read with `readlink` and absolute targets are
//! interpreted relative to the root, `..` stops at the top of the root, and
//! nothing outside the root is looked at, so a path that resolves here
//! really exists in the jail. With the root `/` this is the host's view.

use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Where a path led: the symlinks passed on the way (in order, as paths
/// inside the base) and the final object's path inside the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Every symlink followed, as an absolute path inside the base.
    pub links: Vec<PathBuf>,
    /// The path of what it resolves to, inside the base, without symlinks.
    pub target: PathBuf,
}

/// Resolves the absolute `path` as a process chrooted into `base` would:
/// component by component, following symlinks (absolute targets are taken
/// relative to `base`, `..` stops at the top). With `base` = `/` this is the
/// host's view. Fails when a component is missing or after 40 links.
pub fn resolve_in(base: &Path, path: &Path) -> Result<Resolution, String> {
    let mut pending: Vec<OsString> = names(path);
    pending.reverse();
    let mut current = PathBuf::from("/");
    let mut links = Vec::new();
    while let Some(name) = pending.pop() {
        if name == ".." {
            current.pop();
            continue;
        }
        let next = current.join(&name);
        let on_disk = inside(base, &next);
        let meta = fs::symlink_metadata(&on_disk).map_err(|e| {
            format!(
                "{} (resolving {} in {}): {e}",
                next.display(),
                path.display(),
                base.display()
            )
        })?;
        if meta.file_type().is_symlink() {
            links.push(next.clone());
            if links.len() > 40 {
                return Err(format!("too many links resolving {}", path.display()));
            }
            let target = fs::read_link(&on_disk)
                .map_err(|e| format!("readlink {}: {e}", on_disk.display()))?;
            if target.is_absolute() {
                current = PathBuf::from("/");
            }
            let mut more = names(&target);
            more.reverse();
            pending.extend(more);
        } else {
            current = next;
        }
    }
    Ok(Resolution {
        links,
        target: current,
    })
}

/// The normal and `..` components of `path` (`.` and `/` dropped).
fn names(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// The host path of the jail path `path` under `base` (no resolution).
pub fn inside(base: &Path, path: &Path) -> PathBuf {
    base.join(path.strip_prefix("/").unwrap_or(path))
}
