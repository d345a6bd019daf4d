//! What a directory listing brings into a jail: the names the program
//! sees, but content only for what it reads; a file it only looked at
//! stays hollow (the host's size and metadata, no content); host runtime
//! state and account backups never; a file the program's user could not
//! read on the host is not copied for it.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use jailtrace_manifest::{EntryKind, Manifest};
use serde_json::Value;

use crate::cmd::chroot_output;
use crate::jail::Jail;
use crate::util::{require_root, BASE_ENV};

/// Every regular file in the root that holds content (disk blocks) must
/// be in the manifest with a hash: nothing is copied unrecorded.
fn assert_content_is_recorded(root: &Path, manifest: &Manifest, dir: &Path) {
    for item in fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let jail_path = Path::new("/").join(path.strip_prefix(root).unwrap());
        if meta.is_dir() {
            assert_content_is_recorded(root, manifest, &path);
        } else if meta.is_file() && meta.blocks() > 0 {
            let entry = manifest.entry(&jail_path).unwrap_or_else(|| {
                panic!(
                    "{} holds content the manifest does not list",
                    jail_path.display()
                )
            });
            assert!(
                entry.sha256.is_some() || entry.content.is_some(),
                "{} holds content but is recorded without a hash",
                jail_path.display()
            );
        }
    }
}

#[test]
fn listing_and_stat_copy_metadata_not_content_nor_runtime_state() {
    if !require_root("listing_and_stat_copy_metadata_not_content_nor_runtime_state") {
        return;
    }
    let jail = Jail::new("ls-l");
    let argv = [
        "/bin/sh",
        "-c",
        "ls -l /etc >/dev/null; ls -l /var/log >/dev/null; ls -la /tmp >/dev/null; find / -maxdepth 1 >/dev/null",
    ];
    let out = jail.run(&argv, &[], BASE_ENV);
    out.expect_ok();
    let manifest = out.manifest();
    let etc = jail.root.join("etc");

    for backup in [
        "passwd-",
        "group-",
        "shadow-",
        "gshadow-",
        "subuid",
        "subgid",
        ".pwd.lock",
        "shadow",
    ] {
        assert!(
            fs::symlink_metadata(etc.join(backup)).is_err(),
            "/etc/{backup} reached the root"
        );
    }
    // Files `ls -l` only looked at are hollow: the host's size, no content.
    let mut hollow = 0;
    for entry in manifest.entries.iter().filter(|e| e.hollow) {
        hollow += 1;
        let in_root = fs::symlink_metadata(
            jail.root
                .join(entry.path.as_path().strip_prefix("/").unwrap()),
        )
        .unwrap();
        let host = fs::metadata(entry.path.as_path()).unwrap();
        assert_eq!(entry.kind, EntryKind::File);
        assert_eq!(
            (in_root.len(), in_root.blocks()),
            (host.len(), 0),
            "{}",
            entry.path
        );
        assert!(entry.sha256.is_none());
    }
    assert!(
        hollow > 10,
        "only {hollow} hollow entries after `ls -l /etc`"
    );
    if Path::new("/etc/machine-id").exists() {
        let entry = manifest
            .entry(Path::new("/etc/machine-id"))
            .expect("machine-id listed");
        assert!(entry.hollow, "the host's machine-id was copied");
    }
    // Runtime state: the directories, empty.
    for dir in ["var/log", "tmp"] {
        let left: Vec<_> = fs::read_dir(jail.root.join(dir)).unwrap().collect();
        assert!(left.is_empty(), "/{dir} holds the host's files: {left:?}");
    }
    // Top-level directories `find` only looked at are not left behind.
    for top in ["boot", "media", "mnt", "opt", "srv", "home"] {
        if Path::new("/").join(top).is_dir() {
            assert!(!jail.root.join(top).exists(), "/{top} was left in the root");
        }
    }
    assert_content_is_recorded(&jail.root, &manifest, &jail.root);

    let summary: Value = serde_json::from_slice(&out.finished.stdout).unwrap();
    let listing = &summary["listing"];
    assert!(listing["left_out"].as_u64() > Some(0), "{summary}");
    assert!(listing["hidden"].as_u64() > Some(0), "{summary}");
    assert_eq!(listing["hollow"].as_u64(), Some(hollow), "{summary}");
    // What shipped is what was verified: it runs under plain chroot.
    chroot_output(
        &jail.root,
        &["/bin/sh", "-c", "ls -l /etc >/dev/null"],
        BASE_ENV,
    )
    .assert_success();
}

#[test]
fn a_hollow_file_read_by_a_later_run_is_copied() {
    if !require_root("a_hollow_file_read_by_a_later_run_is_copied") {
        return;
    }
    let jail = Jail::new("hollow-read");
    // The first run only looks at GPL-3; every later run reads it.
    let script = "ls -l /usr/share/common-licenses >/dev/null; \
                  if [ -e /var/tmp/second ]; then cat /usr/share/common-licenses/GPL-3; fi; \
                  : > /var/tmp/second";
    let out = jail.run(&["/bin/sh", "-c", script], &[], BASE_ENV);
    out.expect_ok();
    let manifest = out.manifest();
    let roles: Vec<_> = manifest.runs.iter().map(|r| r.role).collect();
    assert!(
        roles.len() >= 3,
        "the hollow read was not seen as a miss: {roles:?}"
    );
    let gpl = manifest
        .entry(Path::new("/usr/share/common-licenses/GPL-3"))
        .unwrap();
    assert!(!gpl.hollow && gpl.sha256.is_some(), "{gpl:?}");
    assert_eq!(
        fs::read(jail.root.join("usr/share/common-licenses/GPL-3")).unwrap(),
        fs::read("/usr/share/common-licenses/GPL-3").unwrap()
    );
}

#[test]
fn keep_listing_keeps_a_directorys_names_with_content() {
    if !require_root("keep_listing_keeps_a_directorys_names_with_content") {
        return;
    }
    let jail = Jail::new("keep-listing");
    let argv = ["/bin/sh", "-c", "ls /usr/share/common-licenses"];
    let out = jail.run(
        &argv,
        &["--keep-listing", "/usr/share/common-licenses"],
        BASE_ENV,
    );
    out.expect_ok();
    let host = crate::cmd::host_output(&argv, BASE_ENV);
    crate::cmd::assert_same_stdout(&chroot_output(&jail.root, &argv, BASE_ENV), &host);
    let manifest = out.manifest();
    let gpl = manifest
        .entry(Path::new("/usr/share/common-licenses/GPL-3"))
        .unwrap();
    assert!(gpl.sha256.is_some() && !gpl.hollow);

    // Without it, the names are left out (the summary says so).
    let plain = Jail::new("no-keep-listing");
    let out = plain.run(&argv, &[], BASE_ENV);
    out.expect_ok();
    assert!(out
        .manifest()
        .entry(Path::new("/usr/share/common-licenses/GPL-3"))
        .is_none());
}

#[test]
fn files_the_users_program_cannot_read_and_runtime_state_are_denied() {
    if !require_root("files_the_users_program_cannot_read_and_runtime_state_are_denied") {
        return;
    }
    let jail = Jail::new("unreadable");
    fs::set_permissions(&jail.path, fs::Permissions::from_mode(0o755)).unwrap();
    let private = jail.join("host/private.conf");
    let public = jail.join("host/public.conf");
    fs::create_dir_all(private.parent().unwrap()).unwrap();
    fs::set_permissions(private.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(&private, "root only\n").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&public, "anyone\n").unwrap();
    fs::set_permissions(&public, fs::Permissions::from_mode(0o644)).unwrap();
    let script = format!(
        "cat {} {} 2>/dev/null; exit 0",
        public.display(),
        private.display()
    );
    let allow = jail.allow_own_files();
    let out = jail.run(
        &["/bin/sh", "-c", &script],
        &["--user", "nobody", &allow[0], &allow[1]],
        BASE_ENV,
    );
    out.expect_ok();
    let manifest = out.manifest();
    assert!(manifest.entry(&public).is_some());
    assert!(manifest.entry(&private).is_none());
    let denied = manifest
        .denied
        .iter()
        .find(|d| d.path.as_path() == private)
        .expect("the unreadable file is recorded as denied");
    assert!(
        denied
            .rule
            .as_deref()
            .unwrap_or("")
            .contains("not readable"),
        "{denied:?}"
    );

    // Without --allow, the test's files under /tmp are host runtime state.
    let other = Jail::new("runtime-state");
    let out = other.run(
        &[
            "/bin/sh",
            "-c",
            &format!("cat {} || true", public.display()),
        ],
        &[],
        BASE_ENV,
    );
    out.expect_ok();
    let manifest = out.manifest();
    assert!(manifest.entry(&public).is_none());
    let denied = manifest
        .denied
        .iter()
        .find(|d| d.path.as_path() == public)
        .expect("denied");
    assert_eq!(
        denied.rule.as_deref(),
        Some("host runtime state under /tmp")
    );
}

#[test]
fn a_listing_shows_every_host_name_in_every_pass_and_makes_only_what_is_used() {
    if !require_root("a_listing_shows_every_host_name_in_every_pass_and_makes_only_what_is_used") {
        return;
    }
    let jail = Jail::new("names");
    // Two levels of a big tree; a directory read twice through one
    // descriptor (rewinddir), and opened again after one of its names was
    // used.
    let find = "find /usr/share/zoneinfo -maxdepth 2";
    let perl = "perl -e 'sub n { opendir(D, $_[0]) or die; my @a = readdir(D); \
                rewinddir(D); my @b = readdir(D); closedir(D); return (scalar(@a), scalar(@b)) } \
                my $d = \"/usr/share/zoneinfo/America\"; my @first = n($d); \
                open(F, \"$d/New_York\") or die; close(F); \
                print join(\" \", @first, n($d)), \"\\n\"'";
    // Only the first run writes what it saw.
    let script = format!(
        "[ -e /var/tmp/first ] && exit 0; : > /var/tmp/first; \
         {find} > /var/tmp/find.out; {perl} > /var/tmp/perl.out"
    );
    let out = jail.run(&["/bin/sh", "-c", &script], &[], BASE_ENV);
    out.expect_ok();

    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    let host_find = crate::cmd::host_output(&["/bin/sh", "-c", find], BASE_ENV);
    host_find.assert_success();
    let jail_find = fs::read_to_string(jail.root.join("var/tmp/find.out")).unwrap();
    let (host_lines, jail_lines) = (sorted(&host_find.stdout_text()), sorted(&jail_find));
    assert!(host_lines.len() > 500, "{} lines", host_lines.len());
    assert_eq!(jail_lines, host_lines, "find saw other names in the jail");

    let host_perl = crate::cmd::host_output(&["/bin/sh", "-c", perl], BASE_ENV);
    host_perl.assert_success();
    let jail_perl = fs::read_to_string(jail.root.join("var/tmp/perl.out")).unwrap();
    assert_eq!(jail_perl, host_perl.stdout_text());
    let counts: Vec<usize> = jail_perl
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        counts.len() == 4 && counts.iter().all(|&n| n == counts[0] && n > 100),
        "{jail_perl}"
    );

    // Only what was used is in the root: the file perl opened, with its
    // content; the names find and perl only saw are not.
    let zone = "usr/share/zoneinfo/America";
    assert_eq!(
        fs::read(jail.root.join(zone).join("New_York")).unwrap(),
        fs::read(Path::new("/").join(zone).join("New_York")).unwrap()
    );
    let left: Vec<_> = fs::read_dir(jail.root.join(zone))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["New_York"], "names only seen were made in the root");
    let summary: Value = serde_json::from_slice(&out.finished.stdout).unwrap();
    assert!(
        summary["listing"]["left_out"].as_u64() > Some(host_lines.len() as u64 / 2),
        "{summary}"
    );
}

/// A program that reads a listing through a small buffer sees every host
/// name exactly once in each pass, whether the names come after the
/// kernel's last records in the same call (room left for any record) or
/// in a call of their own (a buffer the kernel filled), and again after
/// a rewind; the root's own entries (files the program read first) count
/// once.
#[test]
fn a_listing_read_through_a_small_buffer_shows_each_name_once_per_pass() {
    let test = "a_listing_read_through_a_small_buffer_shows_each_name_once_per_pass";
    if !require_root(test) {
        return;
    }
    let Some(fx) = crate::fixtures::fixtures(test) else {
        return;
    };
    let dirents = fx.dirents.to_str().expect("the fixture path is UTF-8");
    let dir = "/usr/share/zoneinfo/America";
    let jail = Jail::new("small-buffer");
    // The root's directory gets real entries first (about 1 KiB of
    // records), then it is listed through buffers of 1 and 4 KiB.
    let script = format!(
        "[ -e /var/tmp/first ] && exit 0; : > /var/tmp/first; \
         for f in {dir}/[A-C]*; do [ -f \"$f\" ] && cat \"$f\" > /dev/null; done; \
         {dirents} 1024 2 {dir} > /var/tmp/1k.out && {dirents} 4096 2 {dir} > /var/tmp/4k.out"
    );
    // The fixture may be built below /tmp (a checkout there).
    let allow = crate::jail::allow_below(fx.dirents.parent().unwrap());
    let allow: Vec<&str> = allow.iter().map(String::as_str).collect();
    jail.run(&["/bin/sh", "-c", &script], &allow, BASE_ENV)
        .expect_ok();

    for (size, out) in [("1024", "var/tmp/1k.out"), ("4096", "var/tmp/4k.out")] {
        let host = crate::cmd::host_output(&[dirents, size, "2", dir], BASE_ENV);
        host.assert_success();
        let seen = fs::read_to_string(jail.root.join(out)).unwrap();
        let mut lines = seen.lines();
        let passes: Vec<&str> = lines.by_ref().take(2).collect();
        let count = host.stdout_text().lines().count() - 2;
        assert!(count > 100, "{count} names on the host");
        assert_eq!(
            passes,
            [format!("{count} {count}"), format!("{count} {count}")],
            "{size}-byte buffer: names missing or shown twice in a pass"
        );
        assert_eq!(seen, host.stdout_text(), "{size}-byte buffer");
    }
    // What the program read is in the root; what it only listed is not.
    let root_dir = jail.root.join(dir.trim_start_matches('/'));
    assert!(root_dir.join("Chicago").is_file());
    assert!(!root_dir.join("New_York").exists());
}
