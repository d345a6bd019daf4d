//! The shared-library closure of an executable, found without running it,
//! the way glibc's `ld.so` would find it on this host.
//!
//! For a `DT_NEEDED` name without a slash, directories are tried in glibc's
//! order (`_dl_map_object`): the `DT_RPATH` of the loading object and of each
//! object up its chain of loaders (skipped when the loading object has a
//! `DT_RUNPATH`, and an object with both uses only its `DT_RUNPATH`), then
//! `LD_LIBRARY_PATH`, then the loading object's `DT_RUNPATH`, then
//! `ld.so.cache`, then the built-in directories for the loader's ABI (the
//! last two skipped for a `DF_1_NODEFLIB` loader). Without a readable cache,
//! the `ld.so.conf` directories are searched before the built-in ones, since
//! the cache would have been built from them. A name with a slash is opened
//! as it is. `$ORIGIN`, `$LIB` and `$PLATFORM` are expanded, `$ORIGIN` being
//! the directory of the path the object was found by (the canonical path for
//! the executable, as the kernel reports it in `/proc/self/exe`). Candidates
//! that are not ELF or whose class or machine differ from the loading
//! object's are skipped. Each object is loaded once: a name already seen, a
//! soname already loaded, or a file (device, inode) already loaded is reused.
//!
//! Guarantees: the order is deterministic and breadth-first, as ld.so loads;
//! names are never converted through UTF-8; nothing is executed; only the
//! executable itself being unreadable is an error, anything else missing is
//! reported in [`Closure::missing`]. Not modelled: `glibc-hwcaps/` and legacy
//! hwcap subdirectories (CPU-dependent), `LD_PRELOAD`, `dlopen`, and the
//! secure-mode (setuid) restrictions on tokens.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::abi::Abi;
use crate::dst::{self, Tokens};
use crate::error::Error;
use crate::info::ElfInfo;
use crate::ldcache::{self, LdCache};
use crate::ldconf;

/// How to resolve: the loader's environment and configuration files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClosureOptions {
    /// `LD_LIBRARY_PATH` entries, in order (see [`crate::split_search_path`]);
    /// an empty entry is the current directory; tokens are expanded with the
    /// executable's values.
    pub ld_library_path: Vec<PathBuf>,
    /// The cache to read; `None` means `/etc/ld.so.cache`. A path that does
    /// not exist means "no cache".
    pub ld_so_cache: Option<PathBuf>,
    /// The configuration read when there is no usable cache; `None` means
    /// `/etc/ld.so.conf`.
    pub ld_so_conf: Option<PathBuf>,
}

/// Why an object is in the closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// The executable's `PT_INTERP`.
    Interpreter,
    /// A `DT_NEEDED` entry of an object in the closure.
    Needed,
}

/// One file the loader maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The path it was found by, e.g. `/lib/x86_64-linux-gnu/libc.so.6`
    /// (not canonicalized: symlinks and `..` stay as the loader opens them).
    pub path: PathBuf,
    /// The `DT_NEEDED` name, or the interpreter's path.
    pub name: OsString,
    /// The object that first asked for it.
    pub needed_by: Option<PathBuf>,
    /// Interpreter or needed library.
    pub kind: ObjectKind,
}

/// The result of [`closure`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closure {
    /// Found objects in load order: the interpreter, then libraries breadth-first.
    pub objects: Vec<Object>,
    /// Names that no directory provided: `(name, needed_by)`.
    pub missing: Vec<(OsString, PathBuf)>,
}

/// Resolves closures against one loader configuration (the cache and
/// configuration files are read once, in [`Resolver::new`]).
#[derive(Debug, Clone)]
pub struct Resolver {
    cache: Option<LdCache>,
    conf_dirs: Vec<PathBuf>,
    ld_library_path: Vec<PathBuf>,
}

/// The closure of `executable` under `opts`. See [`Resolver`].
pub fn closure(executable: &Path, opts: &ClosureOptions) -> Result<Closure, Error> {
    Resolver::new(opts).closure(executable)
}

impl Resolver {
    /// Reads the cache (or, failing that, `ld.so.conf`). A missing or corrupt
    /// cache is not an error: the loader ignores it too.
    pub fn new(opts: &ClosureOptions) -> Resolver {
        let cache_path = opts
            .ld_so_cache
            .clone()
            .unwrap_or_else(|| PathBuf::from(ldcache::DEFAULT_PATH));
        let cache = match LdCache::read(&cache_path) {
            Ok(cache) => Some(cache),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => {
                tracing::warn!(%err, "ld.so.cache ignored");
                None
            }
        };
        let conf_dirs = match cache {
            Some(_) => Vec::new(),
            None => ldconf::read_ld_so_conf(
                opts.ld_so_conf
                    .as_deref()
                    .unwrap_or(Path::new(ldconf::DEFAULT_PATH)),
            ),
        };
        Resolver {
            cache,
            conf_dirs,
            ld_library_path: opts.ld_library_path.clone(),
        }
    }

    /// The cache in use, if any.
    pub fn cache(&self) -> Option<&LdCache> {
        self.cache.as_ref()
    }

    /// The closure of the ELF executable (or shared object) at `executable`.
    /// Fails only if `executable` cannot be read as ELF.
    pub fn closure(&self, executable: &Path) -> Result<Closure, Error> {
        Walk::new(self, executable)?.run()
    }
}

/// An object taking part in the walk.
struct Node {
    path: PathBuf,
    info: ElfInfo,
    /// Whose `DT_NEEDED` loaded it.
    loader: Option<usize>,
    /// Its `DT_RPATH` directories (none when it has a `DT_RUNPATH`).
    rpath: Vec<PathBuf>,
    /// Its `DT_RUNPATH` directories.
    runpath: Vec<PathBuf>,
    origin: Option<PathBuf>,
}

enum Found {
    New(usize),
    Known,
}

struct Walk<'r> {
    resolver: &'r Resolver,
    nodes: Vec<Node>,
    by_name: HashMap<OsString, usize>,
    by_file: HashMap<(u64, u64), usize>,
    ld_library_path: Vec<PathBuf>,
    queue: VecDeque<usize>,
    closure: Closure,
}

fn tokens_for<'a>(origin: Option<&'a Path>, abi: &Abi, lib: &'a str) -> Tokens<'a> {
    Tokens {
        origin,
        lib,
        platform: abi.platform,
    }
}

/// The directories of the last `DT_RPATH`/`DT_RUNPATH` string (ld.so keeps
/// only the last entry of each tag).
fn dirs_of(strings: &[OsString], origin: Option<&Path>, abi: &Abi) -> Vec<PathBuf> {
    let lib = abi.lib_dst();
    strings
        .last()
        .map(|s| dst::search_list(s, b":", &tokens_for(origin, abi, &lib)))
        .unwrap_or_default()
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    meta.is_file().then(|| (meta.dev(), meta.ino()))
}

impl<'r> Walk<'r> {
    fn new(resolver: &'r Resolver, executable: &Path) -> Result<Self, Error> {
        let info = ElfInfo::read(executable)?;
        let origin = std::fs::canonicalize(executable)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let abi = Abi::of(info.class, info.machine);
        let lib = abi.lib_dst();
        let tokens = tokens_for(origin.as_deref(), &abi, &lib);
        let ld_library_path = resolver
            .ld_library_path
            .iter()
            .flat_map(|entry| dst::search_list(entry.as_os_str(), b"", &tokens))
            .collect();
        let mut walk = Walk {
            resolver,
            nodes: Vec::new(),
            by_name: HashMap::new(),
            by_file: HashMap::new(),
            ld_library_path,
            queue: VecDeque::new(),
            closure: Closure::default(),
        };
        walk.add_node(executable.to_path_buf(), info, None, origin, None);
        Ok(walk)
    }

    /// Registers a loaded object under its path, the name it was asked for,
    /// its soname and its file identity, and queues its dependencies.
    fn add_node(
        &mut self,
        path: PathBuf,
        info: ElfInfo,
        loader: Option<usize>,
        origin: Option<PathBuf>,
        requested: Option<&OsString>,
    ) -> usize {
        let abi = Abi::of(info.class, info.machine);
        let runpath = dirs_of(&info.runpath, origin.as_deref(), &abi);
        let rpath = if info.runpath.is_empty() {
            dirs_of(&info.rpath, origin.as_deref(), &abi)
        } else {
            Vec::new()
        };
        let idx = self.nodes.len();
        let names = [
            Some(path.as_os_str().to_os_string()),
            requested.cloned(),
            info.soname.clone(),
        ];
        for name in names.into_iter().flatten() {
            self.by_name.entry(name).or_insert(idx);
        }
        if let Some(id) = file_id(&path) {
            self.by_file.entry(id).or_insert(idx);
        }
        self.nodes.push(Node {
            path,
            info,
            loader,
            rpath,
            runpath,
            origin,
        });
        self.queue.push_back(idx);
        idx
    }

    fn run(mut self) -> Result<Closure, Error> {
        if let Some(interp) = self.nodes[0].info.interp.clone() {
            self.add_interpreter(interp);
        }
        while let Some(idx) = self.queue.pop_front() {
            for name in self.nodes[idx].info.needed.clone() {
                if self.by_name.contains_key(&name) {
                    continue;
                }
                match self.resolve(&name, idx) {
                    Some(Found::New(new)) => self.closure.objects.push(Object {
                        path: self.nodes[new].path.clone(),
                        name,
                        needed_by: Some(self.nodes[idx].path.clone()),
                        kind: ObjectKind::Needed,
                    }),
                    Some(Found::Known) => {}
                    None => self
                        .closure
                        .missing
                        .push((name, self.nodes[idx].path.clone())),
                }
            }
        }
        Ok(self.closure)
    }

    fn add_interpreter(&mut self, interp: PathBuf) {
        let exe = self.nodes[0].path.clone();
        if file_id(&interp).is_none() {
            self.closure.missing.push((interp.into_os_string(), exe));
            return;
        }
        self.closure.objects.push(Object {
            path: interp.clone(),
            name: interp.clone().into_os_string(),
            needed_by: Some(exe),
            kind: ObjectKind::Interpreter,
        });
        match ElfInfo::read(&interp) {
            Ok(mut info) => {
                // The loader is its own soname even if it does not say so.
                if info.soname.is_none() {
                    info.soname = interp.file_name().map(|n| n.to_os_string());
                }
                let origin = interp.parent().map(Path::to_path_buf);
                self.add_node(interp, info, Some(0), origin, None);
            }
            Err(err) => {
                tracing::debug!(%err, "interpreter not parsed; its dependencies are not followed");
                if let Some(name) = interp.file_name() {
                    self.by_name.insert(name.to_os_string(), 0);
                }
            }
        }
    }

    /// Finds `name`, asked for by node `loader`, as ld.so would.
    fn resolve(&mut self, name: &OsString, loader: usize) -> Option<Found> {
        if name.as_bytes().contains(&b'/') {
            let node = &self.nodes[loader];
            let abi = Abi::of(node.info.class, node.info.machine);
            let lib = abi.lib_dst();
            let path = dst::expand(
                name.as_bytes(),
                &tokens_for(node.origin.as_deref(), &abi, &lib),
            )?;
            return self.try_candidate(PathBuf::from(OsString::from_vec(path)), name, loader);
        }
        for dir in self.search_dirs_before_cache(loader) {
            if let Some(found) = self.try_candidate(dir.join(name), name, loader) {
                return Some(found);
            }
        }
        let node = &self.nodes[loader];
        if node.info.nodeflib {
            return None;
        }
        let (class, machine) = (node.info.class, node.info.machine);
        if let Some(cached) = self
            .resolver
            .cache
            .as_ref()
            .and_then(|c| c.lookup(name, class, machine))
        {
            if let Some(found) = self.try_candidate(cached.to_path_buf(), name, loader) {
                return Some(found);
            }
        }
        let defaults: Vec<PathBuf> = self
            .resolver
            .conf_dirs
            .iter()
            .cloned()
            .chain(Abi::of(class, machine).default_dirs())
            .collect();
        defaults
            .into_iter()
            .find_map(|dir| self.try_candidate(dir.join(name), name, loader))
    }

    /// RPATHs up the loader chain, `LD_LIBRARY_PATH`, RUNPATH.
    fn search_dirs_before_cache(&self, loader: usize) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if self.nodes[loader].info.runpath.is_empty() {
            let mut at = Some(loader);
            while let Some(i) = at {
                dirs.extend(self.nodes[i].rpath.iter().cloned());
                at = self.nodes[i].loader;
            }
        }
        dirs.extend(self.ld_library_path.iter().cloned());
        dirs.extend(self.nodes[loader].runpath.iter().cloned());
        dirs
    }

    /// Accepts `path` for `name` if it is an ELF file of the loader's class
    /// and machine; a file already loaded is reused under the new name.
    fn try_candidate(&mut self, path: PathBuf, name: &OsString, loader: usize) -> Option<Found> {
        let id = file_id(&path)?;
        if let Some(&known) = self.by_file.get(&id) {
            self.by_name.entry(name.clone()).or_insert(known);
            return Some(Found::Known);
        }
        let info = match ElfInfo::read(&path) {
            Ok(info) => info,
            Err(err) => {
                tracing::debug!(%err, "candidate skipped");
                return None;
            }
        };
        let want = &self.nodes[loader].info;
        if (info.class, info.machine) != (want.class, want.machine) {
            tracing::debug!(path = %path.display(), "candidate skipped: wrong ELF class or machine");
            return None;
        }
        let origin = std::path::absolute(&path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Some(Found::New(self.add_node(
            path,
            info,
            Some(loader),
            origin,
            Some(name),
        )))
    }
}

#[cfg(test)]
mod tests;
