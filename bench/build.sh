#!/bin/bash
# build.sh [--reps N] [--jails N] [--out DIR] [--jailtrace BIN]
#
# Benchmarks making many identical jails from one manifest: a real
# server's (Apache with Debian's configuration, `apache2 -k start`, ready
# when http://127.0.0.1/ answers). Side by side in one run, each repetition
# makes N jails (default 10) in turn by
#   copy  `jailtrace build --manifest M --root DIR` (files copied),
#   link  `jailtrace build --link …` (hard links to the host's files),
#   tar   `tar -xpf jail.tar --numeric-owner -C DIR` of `jailtrace export --format tar`,
#   cp    `cp -a` of the traced root (for scale: what a shell script does),
# timing each batch of N with the wall clock. Before the first batch every
# way is run once to warm the page cache for all alike. Jails are made under
# /var/tmp (the host's file system, so --link can hard-link), removed
# between batches and synced (not timed). The first jail of each way is checked: it
# must serve Debian's default page under plain chroot.
#
# Prints a markdown table of medians to stdout and OUT/build.md.
# Needs root, apache2 (apt-get install apache2), cargo, curl.

set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
REPS=5
JAILS=10
OUT=$REPO/bench/results
BIN=

while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift 2 ;;
	--jails) JAILS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--jailtrace) BIN=$2; shift 2 ;;
	*) echo "usage: $0 [--reps N] [--jails N] [--out DIR] [--jailtrace BIN]" >&2; exit 2 ;;
	esac
done

[ "$(id -u)" = 0 ] || { echo "build.sh: needs root" >&2; exit 1; }
[ -x /usr/sbin/apache2 ] || { echo "build.sh: needs apache2 (apt-get install apache2)" >&2; exit 1; }
mkdir -p "$OUT"
WORK=$(mktemp -d /var/tmp/jailtrace-build-bench.XXXXXX)
cleanup() {
	umount -R "$WORK"/*/proc "$WORK"/*/sys 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "$BIN" ]; then
	(cd "$REPO" && cargo build --release --quiet) || exit 1
	BIN=$REPO/target/release/jailtrace
fi
J=$WORK/jailtrace
cp "$BIN" "$J"

M=$WORK/apache.json
echo "tracing apache2 -k start into $WORK/traced ..." >&2
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$J" run --root "$WORK/traced" --manifest "$M" \
	--env-file /etc/apache2/envvars --ready http://127.0.0.1/ \
	-- /usr/sbin/apache2 -k start >"$WORK/run.out" 2>&1 || {
	cat "$WORK/run.out" >&2
	echo "build.sh: jailing Apache failed (is port 80 free?)" >&2
	exit 1
}
"$J" export --manifest "$M" --format tar --output "$WORK/apache.tar" 2>/dev/null || exit 1
read -r FILES BYTES < <(/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
files = [e for e in m["entries"] if e["kind"] == "file"]
print(len(files), sum(e.get("size", 0) for e in files))' "$M")
ENTRIES=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["entries"]))' "$M")

# make WAY DIR: one jail.
make() {
	case $1 in
	copy) "$J" build --manifest "$M" --root "$2" >/dev/null 2>&1 ;;
	link) "$J" build --link --manifest "$M" --root "$2" >/dev/null 2>&1 ;;
	tar) mkdir "$2" && tar -xpf "$WORK/apache.tar" --numeric-owner -C "$2" ;;
	cp) cp -a "$WORK/traced" "$2" ;;
	esac
}

# serves DIR: Apache started under plain chroot in DIR answers.
serves() {
	local dir=$1 ok=1
	mount -t proc -o ro proc "$dir/proc" 2>/dev/null
	mount -t sysfs -o ro sysfs "$dir/sys" 2>/dev/null
	env -i $(sed -n 's/\$SUFFIX//g; s/^export \(APACHE_[A-Z_]*=.*\)/\1/p' /etc/apache2/envvars) \
		/usr/sbin/chroot "$dir" /usr/sbin/apache2 -k start && sleep 0.5 &&
		curl -s http://127.0.0.1/ | grep -q "It works" && ok=0
	env -i $(sed -n 's/\$SUFFIX//g; s/^export \(APACHE_[A-Z_]*=.*\)/\1/p' /etc/apache2/envvars) \
		/usr/sbin/chroot "$dir" /usr/sbin/apache2 -k stop
	sleep 0.5
	umount "$dir/proc" "$dir/sys" 2>/dev/null
	return $ok
}

WAYS=(copy link tar cp)
for way in "${WAYS[@]}"; do
	make "$way" "$WORK/check-$way" || { echo "build.sh: $way failed" >&2; exit 1; }
	if serves "$WORK/check-$way"; then
		echo "check: a $way jail serves Apache's page under plain chroot" >&2
	else
		echo "build.sh: a $way jail does not serve the page" >&2
		exit 1
	fi
	rm -rf "$WORK/check-$way"
done

declare -A TIMES DISK
for rep in $(seq "$REPS"); do
	for way in "${WAYS[@]}"; do
		# Dirty pages of the last batch would be written back during this one.
		sync
		start=$(date +%s%N)
		for i in $(seq "$JAILS"); do
			make "$way" "$WORK/$way-$i" || { echo "build.sh: $way failed" >&2; exit 1; }
		done
		end=$(date +%s%N)
		TIMES[$way]+="$(((end - start) / 1000)) "
		if [ "$rep" = 1 ]; then
			DISK[$way]=$(du -sk --total "$WORK/$way"-* | tail -1 | cut -f1)
		fi
		rm -rf "$WORK/$way"-*
	done
	echo "repetition $rep of $REPS done" >&2
done

/usr/bin/python3 - "$JAILS" "$REPS" "$ENTRIES" "$FILES" "$BYTES" "$(nproc)" "$OUT/build.md" \
	"copy=${DISK[copy]} ${TIMES[copy]}" "link=${DISK[link]} ${TIMES[link]}" \
	"tar=${DISK[tar]} ${TIMES[tar]}" "cp=${DISK[cp]} ${TIMES[cp]}" <<'PY'
import statistics, sys, datetime, platform
jails, reps, entries, files, size, cpus, out = sys.argv[1:8]
jails, reps = int(jails), int(reps)
times, disk = {}, {}
for arg in sys.argv[8:]:
    way, values = arg.split("=", 1)
    kib, *values = values.split()
    disk[way] = int(kib) / 1024
    times[way] = [int(v) / 1000 for v in values]
med = {w: statistics.median(v) for w, v in times.items()}
label = {
    "copy": "`jailtrace build` (copies)",
    "link": "`jailtrace build --link` (hard links)",
    "tar": "`tar -xpf` of `jailtrace export --format tar`",
    "cp": "`cp -a` of the traced root (reference)",
}
lines = [
    f"Apache (`apache2 -k start`): {entries} entries, {files} files, {int(size) / 2**20:.2f} MiB. "
    f"{jails} jails per batch, median of {reps} batches, {cpus} CPUs, "
    f"{datetime.date.today()}, Linux {platform.release()}.",
    "",
    f"| way | {jails} jails (ms) | per jail (ms) | vs copy | min–max (ms) | disk for {jails} (MiB) |",
    "|---|--:|--:|--:|--:|--:|",
]
for w in ["copy", "link", "tar", "cp"]:
    v = times[w]
    lines.append(
        f"| {label[w]} | {med[w]:.0f} | {med[w] / jails:.1f} | {med['copy'] / med[w]:.2f}× | {min(v):.0f}–{max(v):.0f} | {disk[w]:.1f} |"
    )
text = "\n".join(lines) + "\n"
print(text)
open(out, "w").write(text)
PY
