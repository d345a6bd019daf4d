//! Resolver tests on constructed ELF objects laid out in temporary trees.
//! Library names carry a `jt-` prefix so no host directory can provide them.

use std::ffi::OsStr;

use goblin::elf::header::EM_386;

use super::*;
use crate::testelf::{ld_cache, ElfSpec};
use crate::Class;

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn write(path: &Path, spec: &ElfSpec) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, spec.build()).unwrap();
}

fn lib(soname: &str, needed: &[&str]) -> ElfSpec {
    ElfSpec {
        soname: Some(b(soname)),
        needed: needed.iter().map(|n| b(n)).collect(),
        ..ElfSpec::default()
    }
}

fn exe(needed: &[&str]) -> ElfSpec {
    ElfSpec {
        needed: needed.iter().map(|n| b(n)).collect(),
        ..ElfSpec::default()
    }
}

/// Options with no cache and no ld.so.conf: only the tree under test and
/// the built-in directories (which hold no `libjt-*`) are searched.
fn isolated(root: &Path) -> ClosureOptions {
    ClosureOptions {
        ld_library_path: Vec::new(),
        ld_so_cache: Some(root.join("no-cache")),
        ld_so_conf: Some(root.join("no-conf")),
    }
}

fn found<'a>(c: &'a Closure, name: &str) -> Option<&'a Path> {
    c.objects
        .iter()
        .find(|o| o.name == name)
        .map(|o| o.path.as_path())
}

fn missing_names(c: &Closure) -> Vec<&OsStr> {
    c.missing.iter().map(|(n, _)| n.as_os_str()).collect()
}

#[test]
fn rpath_then_ld_library_path_then_runpath() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    for dir in ["rp", "llp", "runp"] {
        write(&root.join(dir).join("libjt-a.so"), &lib("libjt-a.so", &[]));
    }
    let mut opts = isolated(&root);
    opts.ld_library_path = vec![root.join("llp")];

    let mut with_rpath = exe(&["libjt-a.so"]);
    with_rpath.rpath = Some(b("$ORIGIN/rp"));
    write(&root.join("bin/rpath"), &with_rpath);
    let c = closure(&root.join("bin/rpath"), &opts).unwrap();
    assert_eq!(
        found(&c, "libjt-a.so"),
        Some(root.join("llp/libjt-a.so").as_path()),
        "$ORIGIN is bin/, which has no rp/: on to LD_LIBRARY_PATH"
    );
    with_rpath.rpath = Some(b("$ORIGIN/../rp"));
    write(&root.join("bin/rpath"), &with_rpath);
    let c = closure(&root.join("bin/rpath"), &opts).unwrap();
    assert_eq!(
        found(&c, "libjt-a.so"),
        Some(root.join("bin/../rp/libjt-a.so").as_path())
    );

    let mut both = with_rpath.clone();
    both.runpath = Some(b("$ORIGIN/../runp"));
    write(&root.join("bin/both"), &both);
    let c = closure(&root.join("bin/both"), &opts).unwrap();
    assert_eq!(
        found(&c, "libjt-a.so"),
        Some(root.join("llp/libjt-a.so").as_path()),
        "RUNPATH present: RPATH ignored, LD_LIBRARY_PATH comes first"
    );
    std::fs::remove_file(root.join("llp/libjt-a.so")).unwrap();
    let c = closure(&root.join("bin/both"), &opts).unwrap();
    assert_eq!(
        found(&c, "libjt-a.so"),
        Some(root.join("bin/../runp/libjt-a.so").as_path())
    );
    std::fs::remove_file(root.join("runp/libjt-a.so")).unwrap();
    let c = closure(&root.join("bin/both"), &opts).unwrap();
    assert_eq!(c.objects, []);
    assert_eq!(
        c.missing,
        [(OsString::from("libjt-a.so"), root.join("bin/both"))]
    );
}

#[test]
fn rpath_is_inherited_down_the_loader_chain_but_runpath_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    write(
        &root.join("lib/libjt-a.so"),
        &lib("libjt-a.so", &["libjt-b.so"]),
    );
    write(&root.join("lib/libjt-b.so"), &lib("libjt-b.so", &[]));
    let opts = isolated(&root);

    let mut rpath_exe = exe(&["libjt-a.so"]);
    rpath_exe.rpath = Some(b("$ORIGIN/../lib"));
    write(&root.join("bin/r"), &rpath_exe);
    let c = closure(&root.join("bin/r"), &opts).unwrap();
    assert_eq!(
        found(&c, "libjt-b.so"),
        Some(root.join("bin/../lib/libjt-b.so").as_path())
    );
    assert_eq!(
        c.objects[1].needed_by.as_deref(),
        Some(root.join("bin/../lib/libjt-a.so").as_path())
    );

    let mut runpath_exe = exe(&["libjt-a.so"]);
    runpath_exe.runpath = Some(b("$ORIGIN/../lib"));
    write(&root.join("bin/u"), &runpath_exe);
    let c = closure(&root.join("bin/u"), &opts).unwrap();
    assert!(found(&c, "libjt-a.so").is_some());
    assert_eq!(missing_names(&c), ["libjt-b.so"]);

    // A loading object with its own RUNPATH does not use its loaders' RPATH.
    let mut a = lib("libjt-a.so", &["libjt-b.so"]);
    a.runpath = Some(b("/nonexistent"));
    write(&root.join("lib/libjt-a.so"), &a);
    let c = closure(&root.join("bin/r"), &opts).unwrap();
    assert_eq!(missing_names(&c), ["libjt-b.so"]);
}

#[test]
fn executable_origin_is_its_canonical_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let mut e = exe(&["libjt-a.so"]);
    e.rpath = Some(b("${ORIGIN}/../lib"));
    write(&root.join("real/bin/prog"), &e);
    write(&root.join("real/lib/libjt-a.so"), &lib("libjt-a.so", &[]));
    std::fs::create_dir(root.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(root.join("real/bin/prog"), root.join("elsewhere/prog")).unwrap();
    let c = closure(&root.join("elsewhere/prog"), &isolated(&root)).unwrap();
    assert_eq!(
        found(&c, "libjt-a.so"),
        Some(root.join("real/bin/../lib/libjt-a.so").as_path())
    );
    assert_eq!(
        c.objects[0].needed_by.as_deref(),
        Some(root.join("elsewhere/prog").as_path())
    );
}

#[test]
fn cache_then_defaults_and_ld_so_conf_without_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    write(&root.join("cached/libjt-c.so"), &lib("libjt-c.so", &[]));
    write(&root.join("conf/libjt-c.so"), &lib("libjt-c.so", &[]));
    let cached = root.join("cached/libjt-c.so");
    let cache = ld_cache(
        false,
        false,
        &[(0x0303, "libjt-c.so", cached.to_str().unwrap(), 0)],
        &[],
        None,
    );
    std::fs::write(root.join("ld.so.cache"), cache).unwrap();
    std::fs::write(
        root.join("ld.so.conf"),
        format!("{}\n", root.join("conf").display()),
    )
    .unwrap();
    write(&root.join("bin/p"), &exe(&["libjt-c.so"]));

    let mut opts = isolated(&root);
    opts.ld_so_conf = Some(root.join("ld.so.conf"));
    let no_cache = closure(&root.join("bin/p"), &opts).unwrap();
    assert_eq!(
        found(&no_cache, "libjt-c.so"),
        Some(root.join("conf/libjt-c.so").as_path())
    );

    opts.ld_so_cache = Some(root.join("ld.so.cache"));
    let resolver = Resolver::new(&opts);
    assert!(resolver.cache().is_some());
    let with_cache = resolver.closure(&root.join("bin/p")).unwrap();
    assert_eq!(found(&with_cache, "libjt-c.so"), Some(cached.as_path()));

    // DF_1_NODEFLIB: neither the cache nor the default directories.
    let mut nodeflib = exe(&["libjt-c.so"]);
    nodeflib.nodeflib = true;
    write(&root.join("bin/n"), &nodeflib);
    let c = resolver.closure(&root.join("bin/n")).unwrap();
    assert_eq!(missing_names(&c), ["libjt-c.so"]);

    // A corrupt cache is ignored like a missing one.
    std::fs::write(root.join("bad.cache"), b"glibc-ld.so.cache1.1 truncated").unwrap();
    opts.ld_so_cache = Some(root.join("bad.cache"));
    let resolver = Resolver::new(&opts);
    assert!(resolver.cache().is_none());
    let c = resolver.closure(&root.join("bin/p")).unwrap();
    assert_eq!(
        found(&c, "libjt-c.so"),
        Some(root.join("conf/libjt-c.so").as_path())
    );
}

#[test]
fn wrong_class_and_non_elf_candidates_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let lib32 = ElfSpec {
        class: Class::Elf32,
        machine: EM_386,
        ..lib("libjt-d.so", &[])
    };
    write(&root.join("d32/libjt-d.so"), &lib32);
    std::fs::create_dir(root.join("text")).unwrap();
    std::fs::write(root.join("text/libjt-d.so"), "not ELF").unwrap();
    std::fs::create_dir_all(root.join("dir/libjt-d.so")).unwrap();
    write(&root.join("d64/libjt-d.so"), &lib("libjt-d.so", &[]));
    write(&root.join("bin/p"), &exe(&["libjt-d.so"]));
    let mut opts = isolated(&root);
    opts.ld_library_path = ["d32", "text", "dir", "d64"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let c = closure(&root.join("bin/p"), &opts).unwrap();
    assert_eq!(
        found(&c, "libjt-d.so"),
        Some(root.join("d64/libjt-d.so").as_path())
    );
    opts.ld_library_path.pop();
    let c = closure(&root.join("bin/p"), &opts).unwrap();
    assert_eq!(missing_names(&c), ["libjt-d.so"]);
}

#[test]
fn breadth_first_order_and_each_object_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let l = root.join("l");
    let slash_name = l.join("libjt-shared.so.1");
    let slash_name = slash_name.to_str().unwrap();
    write(
        &l.join("libjt-a.so"),
        &lib("libjt-a.so", &["libjt-c.so", "libjt-shared.so.1"]),
    );
    write(
        &l.join("libjt-b.so"),
        &lib("libjt-b.so", &["libjt-d.so", slash_name, "libjt-gone.so"]),
    );
    write(
        &l.join("libjt-c.so"),
        &lib("libjt-c.so", &["libjt-soname.so"]),
    );
    write(&l.join("libjt-d.so"), &lib("libjt-d.so", &["libjt-a.so"]));
    write(&l.join("libjt-shared.so.1"), &lib("libjt-shared.so.1", &[]));
    // Found by a path first; later asked for by its soname alone.
    write(&l.join("real-name.so"), &lib("libjt-soname.so", &[]));
    let mut e = exe(&[
        "libjt-a.so",
        "libjt-b.so",
        l.join("real-name.so").to_str().unwrap(),
    ]);
    e.runpath = Some(l.as_os_str().as_encoded_bytes().to_vec());
    write(&root.join("p"), &e);
    let mut opts = isolated(&root);
    opts.ld_library_path = vec![l.clone()];

    let c = closure(&root.join("p"), &opts).unwrap();
    let names: Vec<_> = c.objects.iter().map(|o| o.name.to_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "libjt-a.so",
            "libjt-b.so",
            l.join("real-name.so").to_str().unwrap(),
            "libjt-c.so",
            "libjt-shared.so.1",
            "libjt-d.so",
        ]
    );
    assert!(c.objects.iter().all(|o| o.kind == ObjectKind::Needed));
    assert_eq!(
        c.missing,
        [(OsString::from("libjt-gone.so"), l.join("libjt-b.so"))]
    );
    assert_eq!(c, closure(&root.join("p"), &opts).unwrap(), "deterministic");
}

#[test]
fn interpreter_comes_first_and_satisfies_its_soname() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let ld = root.join("ld/ld-jt.so.2");
    write(&ld, &lib("ld-jt.so.2", &[]));
    write(
        &root.join("l/libjt-c.so"),
        &lib("libjt-c.so", &["ld-jt.so.2"]),
    );
    let mut e = exe(&["libjt-c.so"]);
    e.interp = Some(ld.as_os_str().as_encoded_bytes().to_vec());
    write(&root.join("p"), &e);
    let mut opts = isolated(&root);
    opts.ld_library_path = vec![root.join("l")];
    let c = closure(&root.join("p"), &opts).unwrap();
    assert_eq!(c.objects.len(), 2, "{c:?}");
    assert_eq!(c.objects[0].kind, ObjectKind::Interpreter);
    assert_eq!(c.objects[0].path, ld);
    assert_eq!(c.objects[0].name, ld.as_os_str());
    assert_eq!(
        c.objects[0].needed_by.as_deref(),
        Some(root.join("p").as_path())
    );
    assert!(c.missing.is_empty());

    std::fs::remove_file(&ld).unwrap();
    let c = closure(&root.join("p"), &opts).unwrap();
    assert_eq!(
        missing_names(&c),
        [ld.as_os_str(), OsStr::new("ld-jt.so.2")]
    );
}

#[test]
fn host_date_and_bad_input() {
    let c = closure(Path::new("/usr/bin/date"), &ClosureOptions::default()).unwrap();
    assert_eq!(c.objects[0].path, Path::new("/lib64/ld-linux-x86-64.so.2"));
    assert_eq!(
        found(&c, "libc.so.6"),
        Some(Path::new("/lib/x86_64-linux-gnu/libc.so.6"))
    );
    assert!(c.missing.is_empty());
    let err = closure(Path::new("/etc/hostname"), &ClosureOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotElf { .. }), "{err:?}");
    // A static executable needs nothing.
    let c = closure(
        Path::new("/lib64/ld-linux-x86-64.so.2"),
        &ClosureOptions::default(),
    )
    .unwrap();
    assert_eq!(c, Closure::default());
}
