#!/bin/bash
# strace_loop.sh [--strong] ROOT -- PROGRAM [ARGS...]
#
# The baselines jailtrace is measured against: the loop admins (and the old
# makejail tool) run by hand to build a chroot for a program.
#
#   1. Copy the executable and every library `ldd` lists into ROOT.
#   2. Run `strace -ff -e trace=%file chroot ROOT PROGRAM ARGS...`.
#   3. Take every absolute path that failed with ENOENT/ENOTDIR after the
#      chroot() (relative paths are skipped) and copy the ones the host has.
#   4. Repeat until the program exits 0 with nothing new to copy (success),
#      or a run copies nothing new while the program still fails (failure:
#      the loop cannot make progress), or 30 runs (failure).
#
# --strong: the same loop as a careful admin in a hurry would run it, to
# give the baseline its best chance:
#   - strace also gets --seccomp-bpf, so the tracee stops only at the traced
#     syscalls (as jailtrace's does), not at every syscall; -ff follows the
#     children (and their execve, which %file includes).
#   - Every ELF file a step copies (the program, or an executable or shared
#     library a run missed, such as `ls` for bash or a dlopen()ed module)
#     gets what `ldd` lists for it copied at once, in one ldd call per step,
#     so the libraries of a newly found program cost no extra run each.
#   - Relative paths are resolved, not skipped: strace's -y prints the
#     directory of the dirfd (AT_FDCWD<cwd> or N<dir>) of the *at syscalls,
#     and fchdir is traced so a log's cwd is known after chdir/fchdir; see
#     lib/strace_misses.py --root.
# Everything else (how paths are copied, when the loop stops) is the same.
#
# How a path is copied (the careful admin, not `cp -L`): every symlink met
# while resolving the path on the host -- the last component or a directory
# on the way, such as /bin -> usr/bin or /lib64 -> usr/lib64 on merged-/usr
# Debian -- is copied as a symlink with `cp -a --parents`, then its target is
# placed the same way, recursively; the file at the end of the chain is
# copied with `cp -a --parents` (mode, owner, timestamps; device nodes as
# nodes). So ROOT holds the same chains as the host and no file twice. Parent
# directories are made with the host directory's mode and owner. Only
# directories that are themselves looked up (or the parent of a file the
# program wanted to create, e.g. /tmp for `touch /tmp/x`) are created empty;
# `cp -r` of whole directories is never done. Paths under /proc and /sys are
# never copied (an admin would mount those, and no workload needs them).
#
# The program runs with stdin from /dev/null and its stdout and stderr on
# this script's stderr. A PROGRAM without a slash is resolved in PATH on the
# host and run by that absolute path.
#
# Output: one JSON line on stdout,
#   {"ok":bool,"mode":"plain"|"strong","runs":N,"files":N,"bytes":N,"wall_ms":N}
# files/bytes count the regular files in ROOT (`find ROOT -type f`). Why it
# failed, if it did, goes to stderr. Exit status 0 if ok, 1 if the loop
# failed, 2 on bad usage.
#
# Needs: root, strace, chroot, ldd, /usr/bin/python3 (log parsing). No
# network.

set -u -o pipefail

readonly MAX_RUNS=30
readonly HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly PY=/usr/bin/python3

usage() {
	echo "usage: $0 [--strong] ROOT -- PROGRAM [ARGS...]" >&2
	exit 2
}

say() { printf 'strace_loop: %s\n' "$*" >&2; }

now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

START=$(now_ms)
STRONG=false
if [[ ${1-} == --strong ]]; then
	STRONG=true
	shift
fi
(($# >= 3)) && [[ $2 == -- ]] || usage
ROOT=$(realpath -m -- "$1") || usage
shift 2
[[ $ROOT != / ]] || { say "refusing to use / as the root"; exit 2; }
PROGRAM=$1
shift
if [[ $PROGRAM != */* ]]; then
	found=$(type -P -- "$PROGRAM") || { say "$PROGRAM: not found in PATH"; exit 2; }
	PROGRAM=$found
fi
[[ $PROGRAM == /* ]] || PROGRAM=$(realpath -s -- "$PROGRAM")
[[ -x $PROGRAM && ! -d $PROGRAM ]] || { say "$PROGRAM: not an executable"; exit 2; }
for tool in strace chroot ldd "$PY"; do
	type -P -- "$tool" >/dev/null || { say "$tool: not installed"; exit 2; }
done
((EUID == 0)) || { say "must run as root (chroot, device nodes, owners)"; exit 2; }

mkdir -p -- "$ROOT" || exit 2
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/strace_loop.XXXXXX") || exit 2
trap 'rm -rf -- "$LOGDIR"' EXIT

NEW=0 # things created in ROOT by the current step
ELF_NEW=() # --strong: ELF files the current step copied, for ldd
IN_CLOSURE=false # placing what ldd listed (already a closure: no ldd again)

# is_elf FILE: FILE starts with the ELF magic. No fork: read's -N reads
# bytes under LC_ALL=C, and the magic holds no NUL.
is_elf() {
	local magic
	IFS= LC_ALL=C read -r -N 4 magic <"$1" 2>/dev/null
	[[ $magic == $'\x7fELF' ]]
}

# mkdir_like DIR: create the missing directories of DIR (a host path with no
# symlink in it) in ROOT, with the host directories' mode and owner.
mkdir_like() {
	local prefix="" comp rest=${1#/}
	while [[ -n $rest ]]; do
		comp=${rest%%/*}
		[[ $rest == */* ]] && rest=${rest#*/} || rest=""
		prefix+="/$comp"
		if [[ ! -e $ROOT$prefix && ! -L $ROOT$prefix ]]; then
			mkdir -- "$ROOT$prefix" || return 1
			chown --reference="$prefix" -- "$ROOT$prefix"
			chmod --reference="$prefix" -- "$ROOT$prefix"
			NEW=$((NEW + 1))
		fi
	done
}

# copy_one PATH: `cp -a --parents` one host file, symlink or node (PATH's
# directories hold no symlink) into ROOT, unless it is there already.
copy_one() {
	local path=$1
	[[ -e $ROOT$path || -L $ROOT$path ]] && return 0
	mkdir_like "$(dirname -- "$path")" || return 1
	if cp -a --parents -- "$path" "$ROOT/"; then
		NEW=$((NEW + 1))
		if [[ $STRONG == true && $IN_CLOSURE == false && -f $path && ! -L $path ]] && is_elf "$path"; then
			ELF_NEW+=("$path")
		fi
	else
		say "could not copy $path"
	fi
}

# place PATH [DEPTH]: make PATH resolve in ROOT as it does on the host, by
# copying each symlink met on the way and the file (or directory) at the end.
place() {
	local path=$1 depth=${2:-0}
	local cur="" comp rest next target
	((depth <= 40)) || { say "too many symlinks resolving $path"; return; }
	[[ $path == /* ]] || return 0
	rest=${path#/}
	while [[ -n $rest ]]; do
		comp=${rest%%/*}
		[[ $rest == */* ]] && rest=${rest#*/} || rest=""
		case $comp in
		"" | .) continue ;;
		..) cur=${cur%/*}; continue ;;
		esac
		next="$cur/$comp"
		case $next in /proc | /proc/* | /sys | /sys/*) return 0 ;; esac
		if [[ -L $next ]]; then
			copy_one "$next"
			target=$(readlink -- "$next") || return 0
			[[ $target == /* ]] || target="$cur/$target"
			place "$target" $((depth + 1))
			# Carry on from where the chain ends; readlink -f has no
			# symlink left in it, so cur stays a plain directory path.
			cur=$(readlink -f -- "$next") || return 0
		elif [[ -d $next ]]; then
			cur=$next
			[[ -n $rest ]] || mkdir_like "$cur"
		elif [[ -e $next && -z $rest ]]; then
			copy_one "$next"
			return 0
		else
			return 0 # the host has no such path either (or ENOTDIR)
		fi
	done
}

# ldd_closure FILE...: place what `ldd` lists for the FILEs (the loader
# included), in one ldd call. With several files ldd heads each list with
# "FILE:", which is skipped.
ldd_closure() {
	local first arrow lib
	IN_CLOSURE=true
	while read -r first arrow lib _; do
		if [[ $arrow == "=>" && $lib == /* ]]; then
			place "$lib"
		elif [[ $first == /* && $first != *: ]]; then
			place "$first"
		fi
	done < <(ldd -- "$@" 2>/dev/null)
	IN_CLOSURE=false
}

# Step 1: the executable and what ldd lists.
place "$PROGRAM"
ldd_closure "$PROGRAM"
ELF_NEW=()

# Steps 2-4: the strace loop.
if [[ $STRONG == true ]]; then
	MODE=strong
	STRACE=(strace -ff --seccomp-bpf -xx -y -s 65535 -e 'trace=%file,fchdir')
	MISSES=("$PY" "$HERE/lib/strace_misses.py" --root "$ROOT")
else
	MODE=plain
	STRACE=(strace -ff -xx -s 65535 -e trace=%file)
	MISSES=("$PY" "$HERE/lib/strace_misses.py")
fi
runs=0
ok=false
while ((runs < MAX_RUNS)); do
	runs=$((runs + 1))
	rm -f -- "$LOGDIR"/log.*
	"${STRACE[@]}" -o "$LOGDIR/log" chroot -- "$ROOT" "$PROGRAM" "$@" </dev/null >&2
	status=$?
	NEW=0
	ELF_NEW=()
	while IFS= read -r -d '' miss; do
		place "$miss"
	done < <("${MISSES[@]}" "$LOGDIR"/log.*)
	((${#ELF_NEW[@]} == 0)) || ldd_closure "${ELF_NEW[@]}"
	if ((NEW == 0)); then
		if ((status == 0)); then
			ok=true
		else
			say "run $runs: the program exited with status $status and nothing new can be copied; giving up"
		fi
		break
	fi
done
if [[ $ok == false ]] && ((runs == MAX_RUNS && NEW > 0)); then
	say "still copying new files after $MAX_RUNS runs; giving up"
fi

read -r files bytes < <(find "$ROOT" -type f -printf '%s\n' |
	awk '{ n++; s += $1 } END { printf "%d %d\n", n, s }')
printf '{"ok":%s,"mode":"%s","runs":%d,"files":%d,"bytes":%d,"wall_ms":%d}\n' \
	"$ok" "$MODE" "$runs" "$files" "$bytes" $(($(now_ms) - START))
[[ $ok == true ]]
