//! `closure()` against the host's own loader: for real programs and for
//! `$ORIGIN` fixtures built with gcc, the `name => path` pairs, the
//! interpreter line and the `not found` names printed by `/usr/bin/ldd` must
//! equal what jailtrace-elf works out statically.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use jailtrace_elf::{closure, Closure, ClosureOptions, ElfInfo, ObjectKind};

/// What ldd (or the closure) says: `(name, path)` pairs, with the
/// interpreter and slash names as `(path, path)`, and the missing names.
#[derive(Debug, Default, PartialEq, Eq)]
struct View {
    pairs: BTreeSet<(OsString, PathBuf)>,
    missing: BTreeSet<OsString>,
}

fn must_run() -> bool {
    std::env::var_os("JAILTRACE_TESTS_MUST_RUN").is_some_and(|v| v == "1")
}

fn ldd(target: &Path) -> View {
    let out = Command::new("/usr/bin/ldd")
        .arg(target)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD")
        .output()
        .expect("run /usr/bin/ldd");
    assert!(
        out.status.success(),
        "ldd {} failed: {out:?}",
        target.display()
    );
    let mut view = View::default();
    for line in out.stdout.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        // Drop the load address, " (0x...)".
        let line = match line.windows(4).rposition(|w| w == b" (0x") {
            Some(at) => &line[..at],
            None => line,
        };
        if let Some(at) = line.windows(4).position(|w| w == b" => ") {
            let name = OsStr::from_bytes(&line[..at]).to_os_string();
            let path = &line[at + 4..];
            if path == b"not found" {
                view.missing.insert(name);
            } else {
                view.pairs
                    .insert((name, PathBuf::from(OsStr::from_bytes(path))));
            }
        } else if line.starts_with(b"/") {
            let path = OsStr::from_bytes(line);
            view.pairs
                .insert((path.to_os_string(), PathBuf::from(path)));
        }
        // Anything else: linux-vdso.so.1, "statically linked".
    }
    view
}

fn view_of(c: &Closure) -> View {
    View {
        pairs: c
            .objects
            .iter()
            .map(|o| match o.kind {
                ObjectKind::Interpreter => (o.path.clone().into_os_string(), o.path.clone()),
                ObjectKind::Needed => (o.name.clone(), o.path.clone()),
            })
            .collect(),
        missing: c.missing.iter().map(|(name, _)| name.clone()).collect(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Compares ldd and closure() on `target`; panics with both views on a difference.
fn assert_agrees(target: &Path) {
    let mut theirs = ldd(target);
    let c = closure(target, &ClosureOptions::default())
        .unwrap_or_else(|e| panic!("closure({}): {e}", target.display()));
    let mut ours = view_of(&c);

    // ldd runs a shared library through the host loader, which then stands in
    // for libc's DT_NEEDED on it; statically, that name is resolved normally.
    // Same file, printed differently: reconcile by identity.
    let info = ElfInfo::read(target).unwrap();
    if info.interp.is_none() {
        let loader_lines: Vec<_> = theirs
            .pairs
            .iter()
            .filter(|(name, path)| {
                name == path.as_os_str() && !ours.pairs.contains(&(name.clone(), path.clone()))
            })
            .cloned()
            .collect();
        for (name, rtld) in loader_lines {
            let soname = ElfInfo::read(&rtld)
                .unwrap()
                .soname
                .expect("the loader has a soname");
            let ours_for_it = ours
                .pairs
                .iter()
                .find(|(n, _)| *n == soname)
                .cloned()
                .unwrap_or_else(|| panic!("{}: no object for {soname:?}", target.display()));
            assert!(
                same_file(&ours_for_it.1, &rtld),
                "{ours_for_it:?} is not {rtld:?}"
            );
            ours.pairs.remove(&ours_for_it);
            theirs.pairs.remove(&(name, rtld));
        }
    }
    assert_eq!(
        ours,
        theirs,
        "closure() and ldd disagree on {}",
        target.display()
    );
}

#[test]
fn host_binaries_match_ldd() {
    if !Path::new("/usr/bin/ldd").exists() {
        assert!(!must_run(), "/usr/bin/ldd is required");
        eprintln!("SKIPPED host_binaries_match_ldd: /usr/bin/ldd is missing");
        return;
    }
    let candidates = [
        "/usr/bin/date",
        "/bin/bash",
        "/usr/bin/python3.11",
        "/usr/bin/perl",
        "/usr/bin/git",
        "/usr/bin/ssh",
        "/usr/bin/curl",
        "/usr/bin/gpg",
        "/usr/bin/ls",
        "/usr/bin/tar",
        "/usr/bin/openssl",
        "/usr/bin/sqlite3",
        "/usr/bin/vim.basic",
        "/usr/bin/apt",
        "/usr/bin/xz",
        "/usr/bin/make",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3",
        "/usr/lib/x86_64-linux-gnu/libcurl.so.4",
        "/usr/lib/x86_64-linux-gnu/libapt-pkg.so.6.0",
    ];
    let mut compared = Vec::new();
    for path in candidates.map(Path::new) {
        if !path.exists() {
            eprintln!("note: {} absent, not compared", path.display());
            continue;
        }
        assert_agrees(path);
        compared.push(path);
    }
    assert!(
        compared.len() >= 10,
        "only {} binaries compared: {compared:?}",
        compared.len()
    );
}

/// Builds, with gcc, `bin/main` → `lib/libgreet.so` → `lib/libinner.so`,
/// `main` finding its library through `$ORIGIN/../lib` in a DT_RPATH (or a
/// DT_RUNPATH with `runpath`). libgreet has no search path of its own.
fn build_fixture(root: &Path, runpath: bool) -> Option<PathBuf> {
    let gcc = |args: &[&OsStr]| {
        let out = Command::new("gcc")
            .args(args)
            .current_dir(root)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "gcc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(())
    };
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("src/inner.c"), "int inner(void) { return 42; }\n").unwrap();
    std::fs::write(
        root.join("src/greet.c"),
        "int inner(void);\nint greet(void) { return inner(); }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/main.c"),
        "int greet(void);\nint main(void) { return greet() == 42 ? 0 : 1; }\n",
    )
    .unwrap();
    let s = |x: &'static str| OsStr::new(x);
    gcc(&[
        s("-shared"),
        s("-fPIC"),
        s("-o"),
        s("lib/libinner.so"),
        s("src/inner.c"),
    ])?;
    gcc(&[
        s("-shared"),
        s("-fPIC"),
        s("-o"),
        s("lib/libgreet.so"),
        s("src/greet.c"),
        s("-Llib"),
        s("-linner"),
    ])?;
    let exe = if runpath {
        "bin/main-runpath"
    } else {
        "bin/main"
    };
    let dtags = if runpath {
        "-Wl,--enable-new-dtags"
    } else {
        "-Wl,--disable-new-dtags"
    };
    gcc(&[
        s("-o"),
        s(exe),
        s("src/main.c"),
        s("-Llib"),
        s("-lgreet"),
        s("-Wl,-rpath-link,lib"),
        s("-Wl,-rpath,$ORIGIN/../lib"),
        s(dtags),
    ])?;
    Some(root.join(exe))
}

#[test]
fn origin_rpath_and_runpath_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let Some(main) = build_fixture(&root, false) else {
        assert!(!must_run(), "gcc is required");
        eprintln!("SKIPPED origin_rpath_and_runpath_fixtures: gcc is not installed");
        return;
    };
    let main_runpath = build_fixture(&root, true).expect("gcc ran once already");

    let info = ElfInfo::read(&main).unwrap();
    assert_eq!(info.rpath, [OsString::from("$ORIGIN/../lib")]);
    assert!(info.runpath.is_empty());
    let info = ElfInfo::read(&main_runpath).unwrap();
    assert_eq!(info.runpath, [OsString::from("$ORIGIN/../lib")]);
    assert!(info.rpath.is_empty());

    let lib = root.join("bin/../lib");
    let c = closure(&main, &ClosureOptions::default()).unwrap();
    let path_of = |c: &Closure, name: &str| {
        c.objects
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.path.clone())
    };
    assert_eq!(path_of(&c, "libgreet.so"), Some(lib.join("libgreet.so")));
    assert_eq!(
        path_of(&c, "libinner.so"),
        Some(lib.join("libinner.so")),
        "libgreet inherits main's DT_RPATH"
    );
    assert!(c.missing.is_empty(), "{c:?}");

    let c = closure(&main_runpath, &ClosureOptions::default()).unwrap();
    assert_eq!(path_of(&c, "libgreet.so"), Some(lib.join("libgreet.so")));
    assert_eq!(
        c.missing,
        [(OsString::from("libinner.so"), lib.join("libgreet.so"))],
        "DT_RUNPATH is not inherited"
    );

    // The host loader sees the same.
    assert_agrees(&main);
    assert_agrees(&main_runpath);
    let status = Command::new(&main).status().unwrap();
    assert!(status.success(), "the fixture itself runs: {status}");
}
