#!/bin/bash
# units.sh [--reps N] [--out DIR] [--jailtrace BIN] [UNIT...]
#
# Benchmarks `jailtrace run --unit NAME` (every run: discover, verify, the
# default exercise of the listening ports) against the service's native
# start-to-ready time, side by side in one run. Each repetition, per unit:
#   jailed  times `jailtrace run --unit NAME` into a fresh directory (its
#           last run is the verifying one: exit 0 is a verified jail);
#   native  times, on the host, the same command line the unit gives (as
#           the manifest records it: argv, user, group, environment, in
#           the unit's working directory), with the unit's directories
#           made first as systemd would (not timed), until the service
#           answers as the acceptance tests ask it (nginx, apache2,
#           tomcat10: GET / answers 200; redis-server: PING; mariadb: a
#           query over its socket; ssh: its banner on port 22); then it is
#           stopped (not timed).
# Default units: nginx redis-server mariadb apache2 ssh tomcat10 (those
# installed). ssh gets --allow '^/etc/ssh/ssh_host_'.
#
# Prints a markdown table of medians to stdout and OUT/units.md.
# Needs root, curl, redis-cli, mariadb (client), setpriv, python3; ports
# 80, 22, 6379, 3306, 8080 free.

set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
REPS=5
OUT=$REPO/bench/results
BIN=
UNITS=()

while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--jailtrace) BIN=$2; shift 2 ;;
	-*) echo "usage: $0 [--reps N] [--out DIR] [--jailtrace BIN] [UNIT...]" >&2; exit 2 ;;
	*) UNITS+=("$1"); shift ;;
	esac
done
[ ${#UNITS[@]} -eq 0 ] && UNITS=(nginx redis-server mariadb apache2 ssh tomcat10)

die() { echo "units.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
if [ -z "$BIN" ]; then
	(cd "$REPO" && cargo build --release -q) || die "cargo build failed"
	BIN=$REPO/target/release/jailtrace
fi
BIN=$(realpath "$BIN")
mkdir -p "$OUT"
WORK=$(mktemp -d /var/tmp/jailtrace-units-bench.XXXXXX)
chmod 755 "$WORK"
cleanup() {
	for m in $(grep -o "$WORK[^ ]*" /proc/mounts | sort -r); do umount -l "$m"; done
	rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# ready UNIT: the service answers (one try).
ready() {
	case $1 in
	nginx | apache2) curl -fs -o /dev/null --max-time 2 http://127.0.0.1/ ;;
	tomcat10) curl -fs -o /dev/null --max-time 2 http://127.0.0.1:8080/ ;;
	redis-server) [ "$(timeout 2 redis-cli ping 2>/dev/null)" = PONG ] ;;
	mariadb) mariadb -N -e 'SELECT 1' >/dev/null 2>&1 ;;
	ssh) timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/22; head -c 8 <&3' 2>/dev/null | grep -q '^SSH-2.0' ;;
	*) return 1 ;;
	esac
}

# installed UNIT
installed() {
	case $1 in
	nginx) [ -x /usr/sbin/nginx ] ;;
	apache2) [ -x /usr/sbin/apache2 ] ;;
	redis-server) [ -x /usr/bin/redis-server ] ;;
	mariadb) [ -x /usr/sbin/mariadbd ] ;;
	ssh) [ -x /usr/sbin/sshd ] ;;
	tomcat10) [ -x /usr/share/tomcat10/bin/catalina.sh ] ;;
	*) return 1 ;;
	esac
}

# The native command of a manifest, as a NUL-separated script for
# `setpriv … env -i … ARGV`, and the unit's directories to make (lines
# `PATH MODE UID GID`).
native_plan() {
	python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
p = m["programs"][0]
cmd = ["setpriv"]
if p.get("user"):
    cmd += ["--reuid", p["user"], "--regid", p.get("group") or p["user"], "--init-groups"]
cmd += ["env", "-i", "--chdir=" + (p.get("cwd") or "/")]
cmd += [e for e in p.get("env", []) if isinstance(e, str)]
cmd += p["argv"]
open(sys.argv[2], "wb").write(b"\0".join(a.encode() for a in cmd))
with open(sys.argv[3], "w") as f:
    for e in m["entries"]:
        if e["reason"].get("cause") == "requested" and e.get("kind") == "dir":
            f.write(f'{e["path"]} {e["mode"]} {e["uid"]} {e["gid"]}\n')
EOF
}

# stop_native UNIT PID: the service and what it started.
stop_native() {
	local unit=$1 pid=$2 pidfile=
	case $unit in
	nginx) pidfile=/run/nginx.pid ;;
	apache2) pidfile=/run/apache2/apache2.pid ;;
	esac
	if [ -n "$pidfile" ] && [ -s "$pidfile" ]; then
		kill "$(cat "$pidfile")" 2>/dev/null
	fi
	kill "$pid" 2>/dev/null
	for _ in $(seq 100); do
		ready "$unit" || break
		sleep 0.1
	done
	wait "$pid" 2>/dev/null
	sleep 0.3
}

declare -A JAILED NATIVE
for unit in "${UNITS[@]}"; do
	installed "$unit" || { echo "units.sh: $unit is not installed: skipped" >&2; continue; }
	extra=()
	[ "$unit" = ssh ] && extra=(--allow '^/etc/ssh/ssh_host_')
	for rep in $(seq "$REPS"); do
		dir=$WORK/$unit/$rep
		mkdir -p "$dir"
		start=$(now_ms)
		if (cd "$dir" && "$BIN" run --unit "$unit" "${extra[@]}" >"$dir/out" 2>&1); then
			JAILED[$unit]+="$(($(now_ms) - start)) "
		else
			echo "units.sh: $unit rep $rep: jailtrace failed (see below)" >&2
			tail -5 "$dir/out" >&2
			JAILED[$unit]+="fail "
		fi
		manifest=$(ls "$dir"/*.jail.json 2>/dev/null | head -1)
		[ -n "$manifest" ] || { NATIVE[$unit]+="fail "; continue; }
		native_plan "$manifest" "$dir/argv" "$dir/dirs" || { NATIVE[$unit]+="fail "; continue; }
		while read -r path mode uid gid; do
			[ -d "$path" ] && continue
			mkdir -p "$path" && chmod "$mode" "$path" && chown "$uid:$gid" "$path"
		done <"$dir/dirs"
		mapfile -d '' argv <"$dir/argv"
		start=$(now_ms)
		"${argv[@]}" >"$dir/native.out" 2>&1 &
		pid=$!
		ok=
		for _ in $(seq 1200); do
			if ready "$unit"; then ok=1; break; fi
			sleep 0.05
		done
		if [ -n "$ok" ]; then
			NATIVE[$unit]+="$(($(now_ms) - start)) "
		else
			echo "units.sh: $unit rep $rep: native start not ready in 60s" >&2
			NATIVE[$unit]+="fail "
		fi
		stop_native "$unit" "$pid"
	done
done

median() { tr ' ' '\n' | grep -E '^[0-9]+$' | sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

{
	echo "| unit | jailtrace run --unit ms | native start-to-ready ms | jailed / native |"
	echo "|---|--:|--:|--:|"
	for unit in "${UNITS[@]}"; do
		[ -n "${JAILED[$unit]:-}" ] || continue
		j=$(echo "${JAILED[$unit]}" | median)
		n=$(echo "${NATIVE[$unit]}" | median)
		ratio=-
		[ "$j" != - ] && [ "$n" != - ] && [ "$n" -gt 0 ] && ratio=$(awk -v j="$j" -v n="$n" 'BEGIN {printf "%.1f×", j/n}')
		fails=$(echo "${JAILED[$unit]}${NATIVE[$unit]}" | grep -o fail | wc -l)
		note=
		[ "$fails" -gt 0 ] && note=" ($fails failed)"
		echo "| $unit$note | $j | $n | $ratio |"
	done
	echo
	echo "Medians of $REPS repetition(s), jailed and native in turn. Machine: $(nproc) CPUs, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'); $("$BIN" --version 2>/dev/null)."
} | tee "$OUT/units.md"
