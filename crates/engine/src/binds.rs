//! The directories the command line asks for: `--mkdir` (a directory the
//! host lacks too, such as `/run/sshd`) and `--bind` (a host directory
//! mounted into the jail for the runs instead of copied).
//!
//! [`Session::place_requested`] runs before the first run. A requested
//! directory is made with the mode and owner given; a bind's mount point
//! with the host directory's. Both are recorded as directory entries with
//! cause `requested`, and the bind as a mount (fstype `bind`, its host
//! directory as `source`, `["ro"]` when read-only). The directories above
//! them are placed from the host like any parent; one the host lacks too
//! is made 0755, owned by root, also with cause `requested`.
//!
//! Guarantees: a bind is mounted before each run ([`Session::mount_binds`])
//! and taken down after it ([`Session::unmount_binds`]), and in any case
//! when the session ends; what lies at or below its mount point is never
//! copied, listed, recorded as absent or as created
//! ([`crate::policy::Verdict::Bound`]), so nothing is written into the
//! host's directory but what the program itself writes there. Nothing here
//! writes in a read-only session.

use std::path::{Path, PathBuf};

use jailtrace_manifest::{Cause, Entry, EntryKind, Mode, Mount, PathText, Reason};
use jailtrace_rootfs::{self as rootfs, Attrs, Follow, Kind};
use jailtrace_spec::{Bind, NewDir};

use crate::mounts::MountError;
use crate::session::{Observer, Session, Who};

/// Attributes of a directory above a requested one that the host lacks too.
const PARENT_ATTRS: Attrs = Attrs {
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime: None,
};

impl Session {
    /// Makes the requested directories and the mount points of `binds`,
    /// records them, and records the binds as mounts (see the module
    /// documentation). A path the root already records is left as it is.
    pub(crate) fn place_requested(
        &mut self,
        dirs: &[NewDir],
        binds: &[Bind],
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        for bind in binds {
            self.policy_mut().bind(&bind.jail);
            let mount = Mount {
                fstype: "bind".into(),
                path: bind.jail.as_path().into(),
                options: if bind.read_only {
                    vec!["ro".into()]
                } else {
                    Vec::new()
                },
                source: Some(bind.host.as_path().into()),
                reason: Reason::new(Cause::Requested, 0),
            };
            match self.mounts.iter_mut().find(|m| m.path == mount.path) {
                Some(earlier) => *earlier = mount,
                None => self.mounts.push(mount),
            }
        }
        if self.read_only {
            return Ok(());
        }
        for dir in dirs {
            let attrs = Attrs {
                mode: dir.mode,
                uid: dir.uid,
                gid: dir.gid,
                mtime: None,
            };
            self.requested_dir(&dir.path, &attrs, true, observer)?;
            if let Some(setting) = &dir.setting {
                // The directory and those made above it name the setting.
                let made_for = |e: &Entry| {
                    e.path.as_path() == dir.path
                        || e.reason.requested.as_ref().map(|r| r.as_path()) == Some(&dir.path)
                };
                for e in self.entries.iter_mut() {
                    if e.reason.cause == Cause::Requested
                        && e.reason.setting.is_none()
                        && made_for(e)
                    {
                        e.reason.setting = Some(setting.clone());
                    }
                }
            }
        }
        for bind in binds {
            // The mount point looks like the host directory it shows.
            let attrs = self
                .host_attrs(&bind.host)
                .map_err(|source| rootfs::Error::Host {
                    op: "stat",
                    path: bind.host.clone(),
                    source,
                })?;
            self.requested_dir(&bind.jail, &attrs, false, observer)?;
        }
        Ok(())
    }

    /// The mode and owner of the host directory `dir` (a bind's source,
    /// an absolute host path), symlinks followed. Read through
    /// [`rootfs::Host::system`], so a rootless run records the host's
    /// owners, not the ones its user namespace shows (65534 for root).
    fn host_attrs(&self, dir: &Path) -> std::io::Result<Attrs> {
        let real = std::fs::canonicalize(dir)?;
        let meta = rootfs::Host::system()
            .lstat(&real)
            .map_err(std::io::Error::other)?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        Ok(Attrs {
            mode: meta.mode & 0o7777,
            uid: meta.uid,
            gid: meta.gid,
            mtime: None,
        })
    }

    /// Makes the directory `path` with `attrs` (and the directories above
    /// it), recorded with cause `requested`. `fix`: an existing directory
    /// there gets `attrs` (a `--mkdir` says what it should be).
    fn requested_dir(
        &mut self,
        path: &Path,
        attrs: &Attrs,
        fix: bool,
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        if self.has_entry(path) {
            return Ok(());
        }
        let who = Who::default();
        let ancestors: Vec<PathBuf> = path
            .ancestors()
            .skip(1)
            .filter(|a| *a != Path::new("/"))
            .map(Path::to_path_buf)
            .collect();
        for above in ancestors.iter().rev() {
            if self.root.stat(above)?.is_some() {
                continue;
            }
            if self.host.lstat(above)?.is_some() {
                self.place(above, Follow::Yes, false, Cause::Parent, &who, observer)?;
                if self.root.stat(above)?.is_some() {
                    continue;
                }
            }
            // The host lacks it too (or will not give it): an empty
            // directory, as an init script's `mkdir -p` would make.
            self.make_dir(above, &PARENT_ATTRS, path, observer)?;
        }
        match self.root.lstat(path)? {
            Some(meta) if meta.kind == Kind::Dir => {
                if fix {
                    self.root.chown(path, attrs.uid, attrs.gid)?;
                    self.root.chmod(path, attrs.mode)?;
                }
                self.record_dir(path, attrs, path, observer);
                Ok(())
            }
            Some(meta) => Err(rootfs::Error::Exists {
                path: path.to_path_buf(),
                kind: meta.kind,
            }),
            None => self.make_dir(path, attrs, path, observer),
        }
    }

    /// Makes the directory `path` with `attrs` and records it for `requested`.
    fn make_dir(
        &mut self,
        path: &Path,
        attrs: &Attrs,
        requested: &Path,
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        self.root.mkdir(path, attrs)?;
        self.record_dir(path, attrs, requested, observer);
        Ok(())
    }

    fn record_dir(
        &mut self,
        path: &Path,
        attrs: &Attrs,
        requested: &Path,
        observer: &mut dyn Observer,
    ) {
        let mut reason = Reason::new(Cause::Requested, 0);
        reason.requested = (path != requested).then(|| PathText::from(requested));
        let entry = Entry::new(
            path.into(),
            EntryKind::Dir,
            Mode::from_st_mode(attrs.mode),
            attrs.uid,
            attrs.gid,
            reason,
        );
        self.record(entry, observer);
    }

    /// The binds the session records, as (host directory, mount point,
    /// read-only).
    fn binds(&self) -> Vec<(PathBuf, PathBuf, bool)> {
        self.mounts
            .iter()
            .filter(|m| m.is_bind())
            .filter_map(|m| {
                let source = m.source.as_ref()?.as_path().to_path_buf();
                Some((source, m.path.as_path().to_path_buf(), m.read_only()))
            })
            .collect()
    }

    /// Mounts every bind the session records that is not mounted yet. In
    /// a read-only session, only where the mount point is a directory in
    /// the root and nothing is mounted there already; the others are
    /// returned, for the diagnosis.
    pub(crate) fn mount_binds(&mut self) -> Result<Vec<PathBuf>, MountError> {
        let mut unmounted = Vec::new();
        for (source, jail, read_only) in self.binds() {
            if self.mounted.is_mounted(&self.root, &jail) {
                continue;
            }
            if self.read_only {
                let point = matches!(self.root.lstat(&jail), Ok(Some(m)) if m.kind == Kind::Dir);
                if !point || crate::mounts::is_mount_point(&self.root, &jail) {
                    if !point {
                        unmounted.push(jail);
                    }
                    continue;
                }
            }
            self.mounted.bind(&self.root, &source, &jail, read_only)?;
        }
        Ok(unmounted)
    }

    /// Takes every bind down.
    pub(crate) fn unmount_binds(&mut self) {
        for (_, jail, _) in self.binds() {
            self.mounted.unmount(&self.root, &jail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Placement, Quiet};
    use std::os::unix::fs::MetadataExt;

    /// A fake host with /run (0755) and /srv/data (0750), and an empty root.
    fn fixture() -> (tempfile::TempDir, Session, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        let root = dir.path().join("root");
        std::fs::create_dir_all(host.join("run")).unwrap();
        std::fs::create_dir_all(host.join("srv/data")).unwrap();
        std::fs::create_dir_all(host.join("var/lib")).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        let session = Session::fake(&host, &root);
        (dir, session, root)
    }

    fn own() -> (u32, u32) {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }

    #[test]
    fn a_requested_directory_is_made_with_its_mode_and_recorded() {
        // A directory the host lacks is made owned by root.
        if !crate::testutil::need_root(
            "a_requested_directory_is_made_with_its_mode_and_recorded",
            "owners",
        ) {
            return;
        }
        let (_dir, mut s, root) = fixture();
        let (uid, gid) = own();
        let dirs = [NewDir {
            path: "/run/app/sock".into(),
            mode: 0o710,
            uid,
            gid,
            setting: None,
        }];
        s.place_requested(&dirs, &[], &mut Quiet).unwrap();
        let meta = std::fs::metadata(root.join("run/app/sock")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o710);
        let causes: Vec<_> = s
            .entries
            .iter()
            .map(|e| (e.path.to_string(), e.reason.cause, e.mode.bits()))
            .collect();
        assert_eq!(
            causes,
            [
                ("/run".to_string(), Cause::Parent, 0o755),
                ("/run/app".into(), Cause::Requested, 0o755),
                ("/run/app/sock".into(), Cause::Requested, 0o710),
            ],
        );
        assert_eq!(
            s.entries[1]
                .reason
                .requested
                .as_ref()
                .map(|p| p.to_string()),
            Some("/run/app/sock".into())
        );
        assert_eq!(s.entries[2].reason.requested, None);
        // Again: nothing new.
        s.place_requested(&dirs, &[], &mut Quiet).unwrap();
        assert_eq!(s.entries.len(), 3);
    }

    #[test]
    fn a_bind_gets_a_mount_point_like_its_source_and_a_mount_record() {
        let (dir, mut s, root) = fixture();
        let source = dir.path().join("host/srv/data");
        std::fs::set_permissions(&source, std::os::unix::fs::PermissionsExt::from_mode(0o750))
            .unwrap();
        let binds = [Bind {
            host: source.clone(),
            jail: "/var/lib/app".into(),
            read_only: true,
        }];
        s.place_requested(&[], &binds, &mut Quiet).unwrap();
        let point = std::fs::metadata(root.join("var/lib/app")).unwrap();
        assert_eq!(point.mode() & 0o7777, 0o750);
        let entry = s
            .entries
            .iter()
            .find(|e| e.path.to_string() == "/var/lib/app");
        assert_eq!(entry.map(|e| e.reason.cause), Some(Cause::Requested));
        assert_eq!(s.mounts.len(), 1);
        let m = &s.mounts[0];
        assert!(m.is_bind() && m.read_only());
        assert_eq!(
            m.source.as_ref().map(|p| p.as_path()),
            Some(source.as_path())
        );
        // What lies below is the host directory's: never placed.
        let placed = s
            .place(
                Path::new("/var/lib/app/db"),
                Follow::Yes,
                false,
                Cause::Accessed,
                &Who::default(),
                &mut Quiet,
            )
            .unwrap();
        assert_eq!(placed, Placement::Bound);
        assert!(s.absent.is_empty());
    }
}
