#!/bin/bash
# rootless.sh [--reps N] [--out DIR] [--only NAME]... [--user NAME] [--jailtrace BIN]
#
# Benchmarks a rootless `jailtrace run` (run by an ordinary account, in a
# user namespace of its own) against a root run of the same workloads
# (bench/run.sh's), side by side: each repetition runs, in turn, the root
# run and the rootless run, each into a fresh root, so both share the
# machine's noise. Times are wall clock around the whole command (for the
# rootless run that includes `setpriv`, the namespace and its helper
# process). Both must end ok, and `jailtrace diff` of their manifests must
# find nothing, or the script says so.
#
# Prints a markdown table of medians (ms) and the ratio rootless / root to
# stdout and OUT/rootless.md.
#
# Options:
#   --reps N         repetitions per workload (default 5)
#   --out DIR        results directory (default bench/results)
#   --only NAME      run only this workload (repeatable)
#   --user NAME      the ordinary account (default jailtrace-test; created
#                    with useradd when missing)
#   --jailtrace BIN  benchmark this binary instead of building the checkout
#
# Needs root (for the root runs and setpriv), cargo, /usr/bin/python3.

set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
# shellcheck source=lib/workloads.sh
. "$HERE/lib/workloads.sh"

usage() {
	echo "usage: $0 [--reps N] [--out DIR] [--only NAME]... [--user NAME] [--jailtrace BIN]" >&2
	exit 2
}

REPS=5
OUT=$HERE/results
ONLY=()
USER_NAME=jailtrace-test
BIN=
while (($#)); do
	case $1 in
	--reps) REPS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--only) ONLY+=("$2"); shift 2 ;;
	--user) USER_NAME=$2; shift 2 ;;
	--jailtrace) BIN=$2; shift 2 ;;
	*) usage ;;
	esac
done
((${#ONLY[@]})) && WORKLOADS=("${ONLY[@]}")

[ "$(id -u)" = 0 ] || { echo "rootless.sh: needs root" >&2; exit 1; }
id "$USER_NAME" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$USER_NAME" || exit 1
U=$(id -u "$USER_NAME")
G=$(id -g "$USER_NAME")
mkdir -p "$OUT"
SCRATCH=$(mktemp -d /var/tmp/jailtrace-rootless-bench.XXXXXX) || exit 1
chown "$U:$G" "$SCRATCH"
trap 'rm -rf "$SCRATCH"' EXIT

if [ -z "$BIN" ]; then
	(cd "$REPO" && cargo build --release --quiet) || exit 1
	BIN=$REPO/target/release/jailtrace
fi
J=$SCRATCH/jailtrace
cp "$BIN" "$J" && chmod 0755 "$J"
"$J" --version >/dev/null

# timed CMD...: runs CMD from /, prints its wall-clock milliseconds, or
# FAIL when it did not exit 0.
timed() {
	local t0 t1
	t0=${EPOCHREALTIME/./}
	(cd / && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" </dev/null >/dev/null 2>"$SCRATCH/last.err")
	local status=$?
	t1=${EPOCHREALTIME/./}
	if ((status == 0)); then
		echo $(((t1 - t0) / 1000))
	else
		echo FAIL
	fi
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

table="| workload | root ms | rootless ms | rootless / root | manifests equal |
|---|--:|--:|--:|:-:|"
ratios=()
for w in "${WORKLOADS[@]}"; do
	workload_argv "$w" || usage
	roots=() rootless=() equal=yes
	for ((rep = 1; rep <= REPS; rep++)); do
		d=$SCRATCH/$w.$rep
		mkdir -p "$d" && chown "$U:$G" "$d"
		# Both through setpriv, so both pay for its exec.
		r=$(timed setpriv --reuid=0 --regid=0 --init-groups -- \
			"$J" run --root "$d/root.jail" --manifest "$d/root.json" -- "${ARGV[@]}")
		u=$(timed setpriv --reuid="$U" --regid="$G" --init-groups -- \
			"$J" run --root "$d/user.jail" --manifest "$d/user.json" -- "${ARGV[@]}")
		if [ "$r" = FAIL ] || [ "$u" = FAIL ]; then
			echo "$w rep $rep: a run failed (root $r, rootless $u):" >&2
			cat "$SCRATCH/last.err" >&2
			equal=no
			continue
		fi
		"$J" diff "$d/root.json" "$d/user.json" >"$d/diff.txt" || equal=no
		roots+=("$r") rootless+=("$u")
		echo "$w $rep/$REPS: root $r ms, rootless $u ms" >&2
		rm -rf "$d/root.jail" "$d/user.jail"
	done
	((${#roots[@]})) || continue
	rm_=$(printf '%s\n' "${roots[@]}" | median)
	um=$(printf '%s\n' "${rootless[@]}" | median)
	ratio=$(awk -v u="$um" -v r="$rm_" 'BEGIN { printf "%.2f", u / r }')
	ratios+=("$ratio")
	table+="
| $w | $rm_ | $um | ${ratio}× | $equal |"
done
overall=$(printf '%s\n' "${ratios[@]}" | median)
{
	echo "$table"
	echo
	echo "Medians of $REPS repetition(s), root and rootless run in turn. Median ratio: **${overall}×**."
	echo "Machine: $(nproc) CPUs, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'); $("$J" --version)."
} | tee "$OUT/rootless.md"
