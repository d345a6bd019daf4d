#!/usr/bin/python3
"""Read `strace -ff -xx -o LOG` logs of a chrooted run and print the paths
the program looked up and missed, for bench/strace_loop.sh to copy.

Usage: strace_misses.py [--root ROOT] LOG.PID...

Output: NUL-terminated absolute paths (raw bytes, so non-UTF-8 names
survive), each once, in the order first missed. A path is a miss when its
syscall failed with ENOENT or ENOTDIR. Only lines after a successful
`chroot()` count in the log that has one (before it, chroot(1) itself runs
on the host); logs of the forked children have none and count whole.
For a failed create (open/openat with O_CREAT, creat, mkdir, mknod) the
parent directory is printed too: the program wanted to make the file, so
the directory it goes in is what is missing.

Relative paths (to the cwd or to a directory fd) are skipped, unless
--root ROOT is given (strace_loop.sh --strong), for logs written with
strace's -y and fchdir traced. Then a relative path is resolved against:
  - the directory strace printed for the syscall's dirfd, when the syscall
    has one (`openat(AT_FDCWD<DIR>, "x", ...)`, `newfstatat(3<DIR>, ...)`);
  - otherwise (access, stat, readlink, execve, chdir...) the cwd of the
    log's process as last seen: the newest `AT_FDCWD<DIR>` of the same log,
    or the directory a later successful chdir/fchdir entered. A log's cwd
    is unknown until one of those lines (a forked child's log starts with
    its parent's cwd, which the log does not say), and relative paths are
    skipped while it is.
strace reads those directories from /proc outside the chroot, so they are
host paths under ROOT; ROOT is taken off (a directory outside ROOT is not
the jail's, and its relative paths are skipped).

`-xx` makes strace print every string byte as \\xHH, so decoding is exact
and no quoting rules are needed; -y's directories are printed the same way.
"""

import os
import re
import sys

HEX = rb"((?:\\x[0-9a-f]{2})*)"
MISS = re.compile(rb"^(?P<name>\w+)\((?P<args>.*)\)\s+= -1 (?:ENOENT|ENOTDIR) ")
STRING = re.compile(rb'"' + HEX + rb'"')
# -y's decoding of a dirfd as the first argument: AT_FDCWD<DIR> or N<DIR>.
DIRFD = re.compile(rb"^(?:AT_FDCWD|\d+)<" + HEX + rb">, \"")
# Any AT_FDCWD<DIR> on a line: the process's cwd at that syscall.
FDCWD = re.compile(rb"AT_FDCWD<" + HEX + rb">")
CHDIR_OK = re.compile(rb"^chdir\(\"" + HEX + rb"\"\)\s+= 0$")
FCHDIR_OK = re.compile(rb"^fchdir\(\d+<" + HEX + rb">\)\s+= 0$")
CREATES = {b"creat", b"mkdir", b"mkdirat", b"mknod", b"mknodat"}
OPENS = {b"open", b"openat", b"openat2"}
# Syscalls whose first path argument is not something to copy.
SKIP = {b"symlink", b"symlinkat", b"rename", b"renameat", b"renameat2",
        b"link", b"linkat", b"unlink", b"unlinkat", b"rmdir", b"chroot",
        b"umount2", b"mount"}
# Syscalls whose first argument is a directory fd the path is relative to.
AT_CALLS = {b"openat", b"openat2", b"newfstatat", b"fstatat64", b"statx",
            b"faccessat", b"faccessat2", b"readlinkat", b"mkdirat",
            b"mknodat", b"fchmodat", b"fchownat", b"utimensat", b"futimesat",
            b"execveat", b"name_to_handle_at", b"fchmodat2"}
CHROOT_OK = re.compile(rb"^chroot\(.*\)\s+= 0$")


def unhex(text):
    return bytes.fromhex(text.replace(b"\\x", b"").decode("ascii"))


def in_jail(host_dir, root):
    """HOST_DIR (a host path strace printed) as a path in the jail, or None
    when it is not under ROOT."""
    if host_dir == root:
        return b"/"
    if host_dir.startswith(root + b"/"):
        return host_dir[len(root):]
    return None


def join(directory, path):
    return directory.rstrip(b"/") + b"/" + path


def misses(lines, root=None):
    """Yield the missed absolute paths of one log's lines; with ROOT,
    relative paths resolved where the log tells their directory."""
    cwd = None  # in the jail, when known (only tracked with ROOT)
    for line in lines:
        if root is not None:
            fdcwd = FDCWD.search(line)
            if fdcwd:
                cwd = in_jail(unhex(fdcwd[1]), root)
            elif ch := CHDIR_OK.match(line):
                target = unhex(ch[1])
                cwd = target if target.startswith(b"/") else (
                    join(cwd, target) if cwd is not None else None)
            elif fch := FCHDIR_OK.match(line):
                cwd = in_jail(unhex(fch[1]), root)
        m = MISS.match(line)
        if not m or m["name"] in SKIP:
            continue
        s = STRING.search(m["args"])
        if not s:
            continue
        path = unhex(s[1])
        if not path.startswith(b"/"):
            if root is None or not path:
                continue
            base = cwd
            if m["name"] in AT_CALLS:
                d = DIRFD.match(m["args"])
                base = in_jail(unhex(d[1]), root) if d else None
            if base is None:
                continue
            path = join(base, path)
        yield path
        creates = m["name"] in CREATES or (
            m["name"] in OPENS and b"O_CREAT" in m["args"])
        if creates:
            yield os.path.dirname(path.rstrip(b"/")) or b"/"


def jailed_lines(log):
    """The lines of one log written after the program was chrooted."""
    with open(log, "rb") as f:
        lines = [line.rstrip(b"\n") for line in f]
    for i, line in enumerate(lines):
        if CHROOT_OK.match(line):
            return lines[i + 1:]
    return lines


def main(args):
    root = None
    if args[:1] == ["--root"]:
        if len(args) < 2:
            print("usage: strace_misses.py [--root ROOT] LOG.PID...", file=sys.stderr)
            return 2
        root = os.fsencode(args[1]).rstrip(b"/")
        args = args[2:]
    seen = set()
    out = sys.stdout.buffer
    for log in args:
        for path in misses(jailed_lines(log), root):
            if path not in seen:
                seen.add(path)
                out.write(path + b"\0")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
