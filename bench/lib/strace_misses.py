#!/usr/bin/python3
"""Read `strace -ff -xx -o LOG` logs of a chrooted run and print the paths
the program looked up and missed, for bench/strace_loop.sh to copy.

Usage: strace_misses.py LOG.PID...

Output: NUL-terminated absolute paths (raw bytes, so non-UTF-8 names
survive), each once, in the order first missed. A path is a miss when its
syscall failed with ENOENT or ENOTDIR. Only lines after a successful
`chroot()` count in the log that has one (before it, chroot(1) itself runs
on the host); logs of the forked children have none and count whole.
Relative paths (to the cwd or to a directory fd) are skipped. For a failed
create (open/openat with O_CREAT, creat, mkdir, mknod) the parent directory
is printed too: the program wanted to make the file, so the directory it
goes in is what is missing.

`-xx` makes strace print every string byte as \\xHH, so decoding is exact
and no quoting rules are needed.
"""

import os
import re
import sys

MISS = re.compile(rb"^(?P<name>\w+)\((?P<args>.*)\)\s+= -1 (?:ENOENT|ENOTDIR) ")
STRING = re.compile(rb'"((?:\\x[0-9a-f]{2})*)"')
CREATES = {b"creat", b"mkdir", b"mkdirat", b"mknod", b"mknodat"}
OPENS = {b"open", b"openat", b"openat2"}
# Syscalls whose first path argument is not something to copy.
SKIP = {b"symlink", b"symlinkat", b"rename", b"renameat", b"renameat2",
        b"link", b"linkat", b"unlink", b"unlinkat", b"rmdir", b"chroot",
        b"umount2", b"mount"}
CHROOT_OK = re.compile(rb"^chroot\(.*\)\s+= 0$")


def misses(lines):
    """Yield the missed absolute paths of one log's lines."""
    for line in lines:
        m = MISS.match(line)
        if not m or m["name"] in SKIP:
            continue
        s = STRING.search(m["args"])
        if not s:
            continue
        path = bytes.fromhex(s[1].replace(b"\\x", b"").decode("ascii"))
        if not path.startswith(b"/"):
            continue
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


def main(logs):
    seen = set()
    out = sys.stdout.buffer
    for log in logs:
        for path in misses(jailed_lines(log)):
            if path not in seen:
                seen.add(path)
                out.write(path + b"\0")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
