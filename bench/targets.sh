#!/bin/bash
# targets.sh [--reps N] [--root-dir DIR] [--jailtrace BIN]
#
# The speed targets of docs/performance.md, side by side in one run: for
# python-issue16 (the ten standard modules issue 16 names), dd and
# find-share (lib/workloads.sh), each repetition runs the program natively,
# then `jailtrace run` into a fresh root, so the two share the machine's
# noise. Prints the medians and the ratios the targets are stated in:
#
#   - Python, whole run (discover + verify) within 3x native, and its
#     discovering run (the manifest's run 1 `wall_ms`) within 1.5x;
#   - dd, whole run within 1.2x of two native runs;
#   - find-share, whole run within 5x native.
#
# Options:
#   --reps N         repetitions (default 9)
#   --root-dir DIR   where the roots are made (default: a new directory in
#                    ${TMPDIR:-/tmp}); the tables in docs/performance.md
#                    were taken with DIR on a tmpfs, which keeps the disk's
#                    noise out of the ratios
#   --jailtrace BIN  this binary instead of building the checkout
#
# Needs root, cargo (unless --jailtrace), /usr/bin/python3. No network.

set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PY=/usr/bin/python3

# shellcheck source=lib/workloads.sh
. "$HERE/lib/workloads.sh"

usage() {
	echo "usage: $0 [--reps N] [--root-dir DIR] [--jailtrace BIN]" >&2
	exit 2
}

REPS=9
ROOT_DIR=
JAILTRACE=
while (($#)); do
	case $1 in
	--reps)
		(($# >= 2)) && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage
		REPS=$2
		shift 2
		;;
	--root-dir)
		(($# >= 2)) && [[ -d $2 ]] || usage
		ROOT_DIR=$(realpath -- "$2")
		shift 2
		;;
	--jailtrace)
		(($# >= 2)) && [[ -x $2 && ! -d $2 ]] || usage
		JAILTRACE=$(realpath -- "$2")
		shift 2
		;;
	*) usage ;;
	esac
done
((EUID == 0)) || { echo "targets.sh: must run as root" >&2; exit 2; }
[[ -x $PY ]] || { echo "targets.sh: $PY: not installed" >&2; exit 2; }
if [[ -z $JAILTRACE ]]; then
	echo "targets.sh: building jailtrace (release)" >&2
	(cd -- "$REPO" && cargo build --release --quiet) || { echo "targets.sh: build failed" >&2; exit 1; }
	JAILTRACE=$REPO/target/release/jailtrace
fi

SCRATCH=$(mktemp -d "${ROOT_DIR:-${TMPDIR:-/tmp}}/jailtrace-targets.XXXXXX") || exit 2
trap 'rm -rf -- "$SCRATCH"' EXIT
cd / || exit 2

# us CMD...: run CMD (output discarded) and print its wall time in µs.
us() {
	local t0=${EPOCHREALTIME/./}
	"$@" </dev/null >/dev/null 2>&1
	local status=$?
	echo $((${EPOCHREALTIME/./} - t0))
	return "$status"
}

# Every sample as one line: WORKLOAD NATIVE_US JAILTRACE_US MANIFEST.
samples=$SCRATCH/samples
: >"$samples"
for workload in python-issue16 dd find-share; do
	workload_argv "$workload"
	for ((rep = 1; rep <= REPS; rep++)); do
		native=$(us "${ARGV[@]}")
		root=$SCRATCH/$workload.$rep
		jailed=$(us "$JAILTRACE" run --root "$root/root" --manifest "$root/manifest.json" -- "${ARGV[@]}") || {
			echo "targets.sh: $workload: jailtrace run failed (repetition $rep)" >&2
			exit 1
		}
		echo "$workload $native $jailed $root/manifest.json" >>"$samples"
		rm -rf -- "$root/root"
		echo "targets.sh: $workload $rep/$REPS" >&2
	done
done

"$PY" - "$samples" "$REPS" "$("$JAILTRACE" --version 2>/dev/null)" <<'EOF'
import json, statistics, sys, time

rows = {}
for line in open(sys.argv[1]):
    workload, native, jailed, manifest = line.split()
    discover = json.load(open(manifest))["runs"][0]["wall_ms"]
    rows.setdefault(workload, []).append((int(native) / 1000, int(jailed) / 1000, discover))

med = {w: [statistics.median(c) for c in zip(*r)] for w, r in rows.items()}
print("| workload | native ms | jailtrace ms | whole / native | whole / two native | discover ms | discover / native |")
print("|---|--:|--:|--:|--:|--:|--:|")
for w, (n, j, d) in med.items():
    print(f"| {w} | {n:.1f} | {j:.1f} | {j / n:.2f}× | {j / (2 * n):.2f}× | {d:.0f} | {d / n:.2f}× |")
print()
targets = [
    ("Python, whole run within 3× native", med["python-issue16"][1] / med["python-issue16"][0], 3.0),
    ("Python, discovering run within 1.5×", med["python-issue16"][2] / med["python-issue16"][0], 1.5),
    ("dd, whole run within 1.2× of two native runs", med["dd"][1] / (2 * med["dd"][0]), 1.2),
    ("find-share, whole run within 5× native", med["find-share"][1] / med["find-share"][0], 5.0),
]
print("| target | measured | met? |")
print("|---|--:|:-:|")
for name, ratio, limit in targets:
    print(f"| {name} | {ratio:.2f}× | {'yes' if ratio <= limit else 'no'} |")
print()
print(f"Medians of {sys.argv[2]} repetitions, native and jailtrace alternating; "
      f"{sys.argv[3]}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
EOF
