//! `jailtrace why` and `jailtrace diff`: questions answered from manifests
//! alone, without a root or the host.
//!
//! `why PATH` finds PATH among the manifest's entries, `absent` and `denied`
//! probes and mounts, and among the paths the program asked for (`requested`),
//! and says which run, process and syscall needed it. It also resolves the
//! looked-up path through the symlinks the manifest records, so a chain
//! component such as the `/lib -> usr/lib` link is shown with the path that
//! pulled it in and the other lookups that go through it. PATH is a path
//! inside the jail and matches component by component (`/usr//lib/` is
//! `/usr/lib`); nothing on the host is looked at.
//!
//! `diff A B` prints [`jailtrace_manifest::diff`] of two manifests and exits
//! like diff(1): [`IDENTICAL`], [`DIFFERENT`] or [`TROUBLE`].
//!
//! Paths are printed lossily for people; with `--json` they keep the
//! manifest's lossless encoding (a string, or `{"bytes": base64}`).

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use anyhow::bail;
use jailtrace_manifest::{
    Cause, Entry, EntryDiff, EntryKind, Manifest, MountDiff, PathText, Probe, ProgramDiff, Reason,
};
use serde_json::{json, Value};

use crate::cli::{DiffArgs, WhyArgs};
use crate::exit;

/// `diff`: the manifests describe the same jail.
pub const IDENTICAL: u8 = 0;
/// `diff`: they differ.
pub const DIFFERENT: u8 = 1;
/// `diff`: a manifest could not be read or is not valid (as diff(1) uses 2).
pub const TROUBLE: u8 = 2;

/// Most symlinks followed while resolving one path, as the kernel's limit
/// (path_resolution(7): "a maximum of 40 symbolic links").
const MAX_LINKS: usize = 40;
/// Most other lookups listed in text under "also on the way to".
const ALSO_SHOWN: usize = 10;

/// `jailtrace why PATH --manifest M`.
pub fn why(args: WhyArgs) -> anyhow::Result<u8> {
    let manifest = Manifest::read(&args.manifest)?;
    let path = args.path.as_path();
    if !path.has_root() {
        bail!(
            "{} is not in the manifest {} (paths in the jail are absolute, e.g. /{})",
            path.display(),
            args.manifest.display(),
            path.display()
        );
    }
    let index = Index::new(&manifest);
    let entry = index.entries.get(path).copied();
    let absent: Vec<&Probe> = manifest
        .absent
        .iter()
        .filter(|p| same(&p.path, path))
        .collect();
    let denied: Vec<&Probe> = manifest
        .denied
        .iter()
        .filter(|p| same(&p.path, path))
        .collect();
    let mounts: Vec<_> = manifest
        .mounts
        .iter()
        .filter(|m| same(&m.path, path))
        .collect();
    let placed_for: Vec<&Entry> = manifest
        .entries
        .iter()
        .filter(|e| e.reason.requested.as_ref().is_some_and(|r| same(r, path)))
        .collect();
    if entry.is_none()
        && absent.is_empty()
        && denied.is_empty()
        && mounts.is_empty()
        && placed_for.is_empty()
    {
        bail!(
            "{} is not in the manifest {}",
            path.display(),
            args.manifest.display()
        );
    }

    // The path the program looked up: what it asked for when this entry
    // was placed on the way to something else, else PATH itself.
    let lookup: &Path = entry
        .and_then(|e| e.reason.requested.as_ref())
        .map_or(path, PathText::as_path);
    let resolution = index.resolve(lookup);
    let also: Vec<&Path> = match entry {
        Some(e) if e.kind == EntryKind::Symlink => index
            .lookups()
            .into_iter()
            .filter(|l| *l != lookup && index.resolve(l).links.iter().any(|x| same(&x.path, path)))
            .collect(),
        _ => Vec::new(),
    };

    if args.json {
        let value = json!({
            "path": PathText::from(path),
            "manifest": PathText::from(args.manifest.as_path()),
            "entry": entry,
            "absent": absent,
            "denied": denied,
            "mounts": mounts,
            "lookup": PathText::from(lookup),
            "resolution": resolution.to_json(),
            "programs": entry.or(resolution.end_entry).map(programs_of).unwrap_or_default(),
            "placed_for": placed_for.iter().map(|e| json!({
                "path": e.path, "kind": e.kind, "cause": e.reason.cause,
            })).collect::<Vec<_>>(),
            "also_on_the_way_to": also.iter().map(|l| PathText::from(*l)).collect::<Vec<_>>(),
        });
        outln!("{}", pretty(&value));
        return Ok(exit::OK);
    }

    // The jail path without `//`, `.` or a trailing `/`.
    let normal: PathBuf = path.components().collect();
    let shown = normal.display();
    if let Some(e) = entry {
        outln!("{shown}: {}", describe(e));
        print_reason(&e.reason);
        print_programs(e);
    }
    for probe in &absent {
        outln!("{shown}: absent: the program looked it up and the host has no such file either");
        print_reason(&probe.reason);
    }
    for probe in &denied {
        let rule = probe.rule.as_deref().unwrap_or("(unnamed rule)");
        outln!(
            "{shown}: denied by the policy rule `{rule}`: the host has it but it was not copied"
        );
        print_reason(&probe.reason);
    }
    for mount in &mounts {
        match &mount.source {
            Some(source) if mount.is_bind() => outln!(
                "{shown}: mount point of the host directory {source}, bound{}",
                if mount.read_only() { " read-only" } else { "" }
            ),
            _ => outln!(
                "{shown}: mount point of a {} filesystem (options {})",
                mount.fstype,
                mount.options.join(",")
            ),
        }
        print_reason(&mount.reason);
    }
    if entry.is_none() && absent.is_empty() && denied.is_empty() && mounts.is_empty() {
        outln!("{shown}: not itself in the jail; the program asked for it");
    }
    if !placed_for.is_empty() {
        outln!("  placed because {shown} was requested:");
        for e in &placed_for {
            outln!(
                "    {} ({}, {})",
                e.path,
                e.kind.as_str(),
                e.reason.cause.as_str()
            );
        }
    }
    if !resolution.links.is_empty() {
        outln!("  {} resolves in the jail through:", lookup.display());
        for link in &resolution.links {
            let this = if same(&link.path, path) {
                "   <- this"
            } else {
                ""
            };
            let target = link
                .target
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            outln!("    {} -> {target}{this}", link.path);
        }
        match resolution.end_entry {
            Some(end) => {
                outln!(
                    "    = {} ({}, {})",
                    end.path,
                    end.kind.as_str(),
                    end.reason.cause.as_str()
                );
                print_programs(end);
            }
            None => outln!("    = {} (not in the manifest)", resolution.end.display()),
        }
    }
    if !also.is_empty() {
        outln!("  also on the way to:");
        for l in also.iter().take(ALSO_SHOWN) {
            outln!("    {}", l.display());
        }
        if also.len() > ALSO_SHOWN {
            outln!("    … and {} more (see --json)", also.len() - ALSO_SHOWN);
        }
    }
    Ok(exit::OK)
}

/// `jailtrace diff A B`.
pub fn diff(args: DiffArgs) -> anyhow::Result<u8> {
    let read = |path: &Path| Manifest::read(path).map_err(anyhow::Error::from);
    let (old, new) = match read(&args.old).and_then(|a| Ok((a, read(&args.new)?))) {
        Ok(pair) => pair,
        Err(e) => {
            crate::print_error(&e);
            return Ok(TROUBLE);
        }
    };
    let d = jailtrace_manifest::diff(&old, &new);
    if args.json {
        let mut value = serde_json::to_value(&d)?;
        if let Value::Object(map) = &mut value {
            map.insert("identical".into(), Value::Bool(d.is_empty()));
        }
        outln!("{}", pretty(&value));
    } else {
        for p in &d.programs {
            match p {
                ProgramDiff::Added { name } => outln!("+ program {name}"),
                ProgramDiff::Removed { name } => outln!("- program {name}"),
                ProgramDiff::Changed { name, fields } => {
                    for change in fields {
                        outln!("~ program {name}: {change}");
                    }
                }
            }
        }
        for e in &d.entries {
            match e {
                EntryDiff::Added { entry } => outln!("+ {} ({})", entry.path, brief(entry)),
                EntryDiff::Removed { entry } => outln!("- {} ({})", entry.path, brief(entry)),
                EntryDiff::Changed { path, fields } => {
                    let fields: Vec<String> = fields.iter().map(ToString::to_string).collect();
                    outln!("~ {path}: {}", fields.join(", "));
                }
            }
        }
        for m in &d.mounts {
            match m {
                MountDiff::Added { mount } => outln!("+ mount {} ({})", mount.path, mount.fstype),
                MountDiff::Removed { mount } => {
                    outln!("- mount {} ({})", mount.path, mount.fstype)
                }
                MountDiff::Changed { path, fields } => {
                    let fields: Vec<String> = fields.iter().map(ToString::to_string).collect();
                    outln!("~ mount {path}: {}", fields.join(", "));
                }
            }
        }
    }
    Ok(if d.is_empty() { IDENTICAL } else { DIFFERENT })
}

/// Whether a manifest path is `path` as a jail path (component by component).
fn same(text: &PathText, path: &Path) -> bool {
    text.as_path() == path
}

fn pretty(value: &Value) -> String {
    // A `Value` has string keys only: it always serialises.
    serde_json::to_string_pretty(value).expect("a JSON value always serialises")
}

/// `file`, `symlink -> usr/lib`, `device 1:3`.
fn brief(e: &Entry) -> String {
    match (e.kind, &e.target, &e.rdev) {
        (EntryKind::Symlink, Some(target), _) => format!("symlink -> {target}"),
        (EntryKind::Device, _, Some(d)) => format!("device {}:{}", d.major, d.minor),
        (kind, _, _) => kind.as_str().to_owned(),
    }
}

/// `file, mode 0755, owner 0:0, 1926232 bytes`.
fn describe(e: &Entry) -> String {
    let mut text = format!("{}, mode {}, owner {}:{}", brief(e), e.mode, e.uid, e.gid);
    if let Some(size) = e.size {
        text.push_str(&format!(", {size} bytes"));
    }
    if let Some(to) = &e.hardlink_to {
        text.push_str(&format!(", hard link to {to}"));
    }
    text
}

fn cause_meaning(cause: Cause) -> &'static str {
    match cause {
        Cause::Executable => "the program itself",
        Cause::Accessed => "the program asked for this path and missed it",
        Cause::SymlinkChain => {
            "a link or file on the way from the requested path to what it resolves to"
        }
        Cause::Parent => "a directory needed to hold another entry",
        Cause::Interpreter => "an ELF interpreter (dynamic loader) or #! interpreter",
        Cause::Listed => "an entry of a directory the program listed, then used",
        Cause::Created => "made by the program itself while it ran, never copied from the host",
        Cause::Preseed => "placed before a run because the ELF files name it",
        Cause::Synthesized => "generated by jailtrace, not copied from the host",
        Cause::Runtime => "needed by the runtime environment rather than one lookup",
        Cause::Requested => {
            "asked for on the command line (--mkdir, or the mount point of a --bind) or by a --unit's setting, not by the program"
        }
        Cause::Lookup => {
            "a host account the program looks up by name, found by experiment (runs with and without it)"
        }
    }
}

/// The names of the programs that need `e`, the first first.
fn programs_of(e: &Entry) -> Vec<String> {
    std::iter::once(&e.reason)
        .chain(&e.also_needed_by)
        .filter_map(|r| r.program.clone())
        .collect()
}

/// Which programs of the jail need `e`: the one that placed it, then the
/// first request of each other (`needed by: date (preseed), ls (openat)`).
fn print_programs(e: &Entry) {
    let programs: Vec<String> = std::iter::once(&e.reason)
        .chain(&e.also_needed_by)
        .filter_map(|r| {
            let name = r.program.as_deref()?;
            let how = r.syscall.as_deref().unwrap_or(r.cause.as_str());
            Some(format!("{name} ({how})"))
        })
        .collect();
    if !programs.is_empty() {
        outln!("  needed by: {}", programs.join(", "));
    }
}

fn print_reason(reason: &Reason) {
    outln!(
        "  cause:     {} ({})",
        reason.cause.as_str(),
        cause_meaning(reason.cause)
    );
    if reason.run == 0 {
        outln!("  run:       0 (before the first run)");
    } else {
        outln!("  run:       {}", reason.run);
    }
    match (reason.pid, &reason.exe) {
        (Some(pid), Some(exe)) => outln!("  process:   pid {pid}, {exe}"),
        (Some(pid), None) => outln!("  process:   pid {pid}"),
        (None, Some(exe)) => outln!("  process:   {exe}"),
        (None, None) => {}
    }
    if let Some(syscall) = &reason.syscall {
        outln!("  syscall:   {syscall}");
    }
    if let Some(requested) = &reason.requested {
        outln!("  requested: {requested}");
    }
    if let Some(exercise) = &reason.exercise {
        outln!("  exercise:  {exercise} (was running: only serving it needed this)");
    }
    if let Some(setting) = &reason.setting {
        outln!("  setting:   {setting}");
    }
}

/// The manifest's entries by jail path, for lookups and symlink resolution.
struct Index<'m> {
    manifest: &'m Manifest,
    entries: HashMap<&'m Path, &'m Entry>,
}

/// Where a path leads in the jail, following the manifest's symlinks.
struct Resolution<'m> {
    /// The symlinks followed, in order.
    links: Vec<&'m Entry>,
    /// The path reached.
    end: PathBuf,
    /// The entry at `end`, if the manifest has one.
    end_entry: Option<&'m Entry>,
    /// More than [`MAX_LINKS`] links: a loop, resolution stopped.
    looped: bool,
}

impl Resolution<'_> {
    fn to_json(&self) -> Value {
        json!({
            "links": self.links.iter().map(|l| json!({"path": l.path, "target": l.target}))
                .collect::<Vec<_>>(),
            "end": PathText::from(self.end.as_path()),
            "end_in_manifest": self.end_entry.is_some(),
            "loop": self.looped,
        })
    }
}

impl<'m> Index<'m> {
    fn new(manifest: &'m Manifest) -> Self {
        let mut entries = HashMap::new();
        for e in &manifest.entries {
            // The first record of a path counts.
            entries.entry(e.path.as_path()).or_insert(e);
        }
        Self { manifest, entries }
    }

    /// Resolves `path` component by component as the kernel would inside
    /// the jail, with only the symlinks the manifest records.
    fn resolve(&self, path: &Path) -> Resolution<'m> {
        let mut pending: Vec<Component<'_>> = path.components().rev().collect();
        let mut current = PathBuf::from("/");
        let mut links = Vec::new();
        let mut looped = false;
        while let Some(component) = pending.pop() {
            match component {
                Component::RootDir | Component::Prefix(_) => current = PathBuf::from("/"),
                Component::CurDir => {}
                Component::ParentDir => {
                    current.pop();
                }
                Component::Normal(name) => {
                    let next = current.join(name);
                    let link = self
                        .entries
                        .get(next.as_path())
                        .filter(|e| e.kind == EntryKind::Symlink);
                    match link.and_then(|e| Some((*e, e.target.as_ref()?))) {
                        Some((entry, target)) => {
                            if links.len() == MAX_LINKS {
                                looped = true;
                                current = next;
                                break;
                            }
                            links.push(entry);
                            // A relative target is relative to the link's directory.
                            pending.extend(target.as_path().components().rev());
                        }
                        None => current = next,
                    }
                }
            }
        }
        let end_entry = self.entries.get(current.as_path()).copied();
        Resolution {
            links,
            end: current,
            end_entry,
            looped,
        }
    }

    /// Every path the program looked up, once each, in manifest order:
    /// each record's `requested`, and its own path when it has none.
    fn lookups(&self) -> Vec<&'m Path> {
        let m = self.manifest;
        let reasons = m
            .entries
            .iter()
            .map(|e| (&e.path, &e.reason))
            .chain(m.absent.iter().map(|p| (&p.path, &p.reason)))
            .chain(m.denied.iter().map(|p| (&p.path, &p.reason)))
            .chain(m.mounts.iter().map(|x| (&x.path, &x.reason)));
        let mut seen = HashSet::new();
        reasons
            .map(|(path, reason)| reason.requested.as_ref().unwrap_or(path).as_path())
            .filter(|path| seen.insert(*path))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a Debian 12 `/bin/date` manifest: merged /usr links.
    fn manifest() -> Manifest {
        let entry =
            |path: &str, kind: &str, target: Option<&str>, cause: &str, req: Option<&str>| {
                let mut e = json!({
                    "path": path, "kind": kind, "mode": "0755", "uid": 0, "gid": 0,
                    "reason": {"cause": cause, "run": 0},
                });
                if let Some(t) = target {
                    e["target"] = json!(t);
                }
                if let Some(r) = req {
                    e["reason"]["requested"] = json!(r);
                }
                e
            };
        let ld = Some("/lib64/ld-linux-x86-64.so.2");
        let json = json!({
            "schema_version": 1, "tool_version": "0", "created_unix": 0,
            "command": {"argv": ["/bin/date"], "executable": "/bin/date", "cwd": "/", "env": []},
            "root": "/j", "runs": [], "absent": [], "denied": [],
            "entries": [
                entry("/lib64", "symlink", Some("usr/lib64"), "symlink_chain", ld),
                entry("/usr", "dir", None, "parent", ld),
                entry("/usr/lib64", "dir", None, "parent", ld),
                entry("/usr/lib64/ld-linux-x86-64.so.2", "symlink",
                      Some("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), "symlink_chain", ld),
                entry("/lib", "symlink", Some("usr/lib"), "symlink_chain", ld),
                entry("/usr/lib", "dir", None, "parent", ld),
                entry("/usr/lib/x86_64-linux-gnu", "dir", None, "parent", ld),
                entry("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "file", None, "interpreter", ld),
                entry("/usr/lib/x86_64-linux-gnu/libc.so.6", "file", None, "preseed",
                      Some("/lib/x86_64-linux-gnu/libc.so.6")),
                entry("/loop", "symlink", Some("loop"), "accessed", None),
            ],
        });
        Manifest::from_slice(json.to_string().as_bytes()).unwrap()
    }

    fn paths<'a>(entries: &[&'a Entry]) -> Vec<&'a str> {
        entries.iter().map(|e| e.path.to_str().unwrap()).collect()
    }

    #[test]
    fn resolution_follows_the_manifest_links() {
        let m = manifest();
        let index = Index::new(&m);
        let r = index.resolve(Path::new("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(
            paths(&r.links),
            ["/lib64", "/usr/lib64/ld-linux-x86-64.so.2", "/lib"]
        );
        assert_eq!(
            r.end,
            Path::new("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        );
        assert_eq!(r.end_entry.unwrap().reason.cause, Cause::Interpreter);
        assert!(!r.looped);
        // `//`, `.` and `..` as the kernel reads them.
        let r = index.resolve(Path::new(
            "//lib/./x86_64-linux-gnu/../x86_64-linux-gnu/libc.so.6",
        ));
        assert_eq!(paths(&r.links), ["/lib"]);
        assert_eq!(r.end, Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        // A path the manifest lacks ends outside it.
        let r = index.resolve(Path::new("/lib/nothing"));
        assert_eq!(r.end, Path::new("/usr/lib/nothing"));
        assert!(r.end_entry.is_none());
    }

    #[test]
    fn a_symlink_loop_stops() {
        let m = manifest();
        let r = Index::new(&m).resolve(Path::new("/loop/x"));
        assert!(r.looped);
        assert_eq!(r.links.len(), MAX_LINKS);
    }

    #[test]
    fn lookups_are_the_requested_paths_once() {
        let m = manifest();
        let lookups = Index::new(&m).lookups();
        assert_eq!(
            lookups,
            [
                Path::new("/lib64/ld-linux-x86-64.so.2"),
                Path::new("/lib/x86_64-linux-gnu/libc.so.6"),
                Path::new("/loop"),
            ]
        );
    }
}
