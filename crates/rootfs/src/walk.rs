//! Walking a path one component at a time, as the kernel resolves it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Most symlinks one walk follows (the kernel's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// The components of an absolute path, yielded as full paths in the order
/// the kernel resolves them: the caller looks at each, [`PathWalk::enter`]s
/// a directory and [`PathWalk::follow`]s a symlink, whose target's
/// components come next (from `/` for an absolute one); `..` goes up.
#[derive(Debug)]
pub struct PathWalk {
    queue: VecDeque<OsString>,
    here: PathBuf,
    links: usize,
}

impl PathWalk {
    pub fn new(path: &Path) -> PathWalk {
        let mut walk = PathWalk {
            queue: VecDeque::new(),
            here: PathBuf::from("/"),
            links: 0,
        };
        walk.push_front(path);
        walk
    }

    fn push_front(&mut self, path: &Path) {
        for c in path.components().rev() {
            match c {
                Component::Normal(c) => self.queue.push_front(c.to_owned()),
                Component::ParentDir => self.queue.push_front("..".into()),
                _ => {}
            }
        }
    }

    /// The next component's full path; `None` at the end.
    pub fn next_path(&mut self) -> Option<PathBuf> {
        loop {
            let c = self.queue.pop_front()?;
            if c == ".." {
                self.here.pop();
                continue;
            }
            return Some(self.here.join(c));
        }
    }

    /// The directory the walk is in: the last one entered.
    pub fn dir(&self) -> &Path {
        &self.here
    }

    /// The component just yielded is the directory `path`: the walk goes on
    /// inside it.
    pub fn enter(&mut self, path: PathBuf) {
        self.here = path;
    }

    /// The component just yielded is a symlink to `target`: its components
    /// come next. `false` (and nothing changes) once the walk has followed
    /// [`MAX_LINKS`] links: a loop.
    pub fn follow(&mut self, target: &Path) -> bool {
        self.links += 1;
        if self.links > MAX_LINKS {
            return false;
        }
        if target.is_absolute() {
            self.here = PathBuf::from("/");
        }
        self.push_front(target);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `path` over a made-up tree: `links` are symlinks, every other
    /// path a directory.
    fn walk(path: &str, links: &[(&str, &str)]) -> Vec<PathBuf> {
        let mut w = PathWalk::new(Path::new(path));
        let mut seen = Vec::new();
        while let Some(p) = w.next_path() {
            seen.push(p.clone());
            match links.iter().find(|(l, _)| Path::new(l) == p) {
                Some((_, target)) => {
                    if !w.follow(Path::new(target)) {
                        break;
                    }
                }
                None => w.enter(p),
            }
        }
        seen
    }

    #[test]
    fn follows_relative_and_absolute_links_and_dot_dot() {
        let links = [("/lib", "usr/lib"), ("/usr/lib/a", "/opt/../srv/a")];
        let got = walk("/lib/a/b", &links);
        let want = [
            "/lib",
            "/usr",
            "/usr/lib",
            "/usr/lib/a",
            "/opt",
            "/srv",
            "/srv/a",
            "/srv/a/b",
        ];
        assert_eq!(got, want.map(PathBuf::from));
    }

    #[test]
    fn a_loop_ends_the_walk() {
        let got = walk("/a/x", &[("/a", "/b"), ("/b", "/a")]);
        assert_eq!(got.len(), MAX_LINKS + 1);
    }
}
