#!/bin/bash
# run.sh [--reps N] [--out DIR] [--quick] [--only NAME]... [--jailtrace BIN]
#
# Benchmarks `jailtrace run` against the strace loop admins use
# (bench/strace_loop.sh) and the same loop run as well as it can be
# (strace_loop.sh --strong: seccomp-bpf, ldd of every ELF it copies,
# relative paths resolved) on a fixed set of workloads, and the program run
# natively for scale.
#
# It builds jailtrace in release mode (`cargo build --release` in this
# checkout) and benchmarks a copy of the binary, so a rebuild during the run
# changes nothing. Then for each workload runs N
# repetitions; each repetition runs, in turn, (a) the program natively on
# the host, (b) `jailtrace run` into a fresh temporary root, (c) the strace
# loop into a fresh temporary root, (d) the strong strace loop into a fresh
# temporary root -- interleaved so the four share the machine's noise.
# Everything runs from / with stdin from /dev/null and OLDPWD unset, so no
# host working directory leaks into the jails. Times are wall clock around
# the whole command, taken by this script.
#
# Raw data (summaries, manifests, stderr of every run) goes to OUT/raw/;
# bench/lib/report.py then prints a markdown table of medians and writes it
# to OUT/bench.md, and all the data to OUT/bench.json.
#
# Options:
#   --reps N     repetitions per workload (default 5)
#   --out DIR    results directory (default bench/results)
#   --quick      one repetition (smoke test)
#   --only NAME  run only this workload (repeatable)
#   --jailtrace BIN  benchmark this binary instead of building the checkout
#                (e.g. one built from `git archive COMMIT` while the working
#                tree is mid-change)
#
# Needs root, cargo, strace, /usr/bin/python3. No network.

set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PY=/usr/bin/python3

# shellcheck source=lib/workloads.sh
. "$HERE/lib/workloads.sh"

usage() {
	echo "usage: $0 [--reps N] [--out DIR] [--quick] [--only NAME]... [--jailtrace BIN]" >&2
	echo "workloads: ${WORKLOADS[*]}" >&2
	exit 2
}

REPS=5
OUT=$HERE/results
ONLY=()
GIVEN_BINARY=
while (($#)); do
	case $1 in
	--reps)
		(($# >= 2)) && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage
		REPS=$2
		shift 2
		;;
	--out)
		(($# >= 2)) || usage
		OUT=$2
		shift 2
		;;
	--quick)
		REPS=1
		shift
		;;
	--only)
		(($# >= 2)) && workload_argv "$2" || usage
		ONLY+=("$2")
		shift 2
		;;
	--jailtrace)
		(($# >= 2)) && [[ -x $2 && ! -d $2 ]] || usage
		GIVEN_BINARY=$(realpath -- "$2")
		shift 2
		;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
((${#ONLY[@]})) && WORKLOADS=("${ONLY[@]}")
((EUID == 0)) || { echo "run.sh: must run as root" >&2; exit 2; }
for tool in cargo strace "$PY"; do
	type -P -- "$tool" >/dev/null || { echo "run.sh: $tool: not installed" >&2; exit 2; }
done

mkdir -p -- "$OUT" || exit 2
OUT=$(cd -- "$OUT" && pwd)
RAW=$OUT/raw
rm -rf -- "$RAW"
mkdir -p -- "$RAW" || exit 2

if [[ -n $GIVEN_BINARY ]]; then
	BUILT=$GIVEN_BINARY
	SOURCE="given binary $GIVEN_BINARY"
else
	echo "run.sh: building jailtrace (release)" >&2
	(cd -- "$REPO" && cargo build --release --quiet) || { echo "run.sh: build failed" >&2; exit 1; }
	BUILT=$REPO/target/release/jailtrace
	SOURCE="checkout at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
	[[ -z $(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null) ]] || SOURCE+=" with uncommitted changes"
fi

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/jailtrace-bench.XXXXXX") || exit 2
trap 'rm -rf -- "$SCRATCH"' EXIT
JAILTRACE=$SCRATCH/bin/jailtrace
mkdir -p -- "$SCRATCH/bin" && cp -- "$BUILT" "$JAILTRACE" || exit 2
VERSION=$("$JAILTRACE" --version 2>/dev/null || echo '?')
echo "run.sh: benchmarking $VERSION ($SOURCE)" >&2

# timed FILE CMD...: run CMD, then write {"ms":…,"status":…} to FILE.
# CMD's redirections are the caller's. The clock is bash's EPOCHREALTIME,
# read without forking.
timed() {
	local file=$1 t0 t1 status
	shift
	t0=${EPOCHREALTIME/./}
	"$@"
	status=$?
	t1=${EPOCHREALTIME/./}
	printf '{"ms":%d.%03d,"status":%d}\n' $(((t1 - t0) / 1000)) $(((t1 - t0) % 1000)) "$status" >"$file"
	return "$status"
}

field() { # field FILE KEY: a top-level value of a one-line JSON object, or "?"
	"$PY" -c 'import json,sys
try: print(json.load(open(sys.argv[1]))[sys.argv[2]])
except Exception: print("?")' "$1" "$2"
}

cd / || exit 2
unset OLDPWD
# Page in the freshly built binary once, so the first timed run does not pay for it.
"$JAILTRACE" run --root "$SCRATCH/warmup/root" --manifest "$SCRATCH/warmup/manifest.json" \
	--json -- /bin/true </dev/null >/dev/null 2>&1
rm -rf -- "$SCRATCH/warmup"
for w in "${WORKLOADS[@]}"; do
	workload_argv "$w"
	mkdir -p -- "$RAW/$w"
	printf '%s\0' "${ARGV[@]}" >"$RAW/$w/argv"
	for ((rep = 1; rep <= REPS; rep++)); do
		d=$RAW/$w/$rep
		mkdir -p -- "$d"

		timed "$d/native.time.json" "${ARGV[@]}" </dev/null >"$d/native.out" 2>&1

		jail=$SCRATCH/jailtrace
		rm -rf -- "$jail" && mkdir -p -- "$jail"
		timed "$d/jailtrace.time.json" "$JAILTRACE" run --root "$jail/root" \
			--manifest "$jail/manifest.json" --json -- "${ARGV[@]}" \
			</dev/null >"$d/jailtrace.json" 2>"$d/jailtrace.err"
		cp -- "$jail/manifest.json" "$d/manifest.json" 2>/dev/null
		rm -rf -- "$jail"

		jail=$SCRATCH/baseline
		rm -rf -- "$jail" && mkdir -p -- "$jail"
		timed "$d/baseline.time.json" "$HERE/strace_loop.sh" "$jail/root" -- "${ARGV[@]}" \
			</dev/null >"$d/baseline.json" 2>"$d/baseline.err"
		rm -rf -- "$jail"

		jail=$SCRATCH/strong
		rm -rf -- "$jail" && mkdir -p -- "$jail"
		timed "$d/strong.time.json" "$HERE/strace_loop.sh" --strong "$jail/root" -- "${ARGV[@]}" \
			</dev/null >"$d/strong.json" 2>"$d/strong.err"
		rm -rf -- "$jail"

		printf 'run.sh: %-15s %d/%d  native %s ms  jailtrace %s ms (ok %s, %s runs)  baseline %s ms (ok %s, %s runs)  strong loop %s ms (ok %s, %s runs)\n' \
			"$w" "$rep" "$REPS" "$(field "$d/native.time.json" ms)" \
			"$(field "$d/jailtrace.time.json" ms)" "$(field "$d/jailtrace.json" ok)" "$(field "$d/jailtrace.json" runs)" \
			"$(field "$d/baseline.time.json" ms)" "$(field "$d/baseline.json" ok)" "$(field "$d/baseline.json" runs)" \
			"$(field "$d/strong.time.json" ms)" "$(field "$d/strong.json" ok)" "$(field "$d/strong.json" runs)" >&2
	done
done

"$PY" "$HERE/lib/report.py" --raw "$RAW" --out "$OUT" --reps "$REPS" \
	--jailtrace "$VERSION ($SOURCE)" -- "${WORKLOADS[@]}"
