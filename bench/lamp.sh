#!/bin/bash
# lamp.sh [--reps N] [--out DIR] [--jailtrace BIN]
#
# Benchmarks making the LAMP jail of examples/lamp.jail.toml (MariaDB and
# Apache with mod_php, Apache run with MariaDB, its PHP page exercised)
# against the time the two servers take to start natively and answer that
# page. Side by side in one run, each repetition
#   up      times `jailtrace up --fresh FILE` (every run of both programs:
#           discover, verify, the exercises, and MariaDB verified again
#           with Apache added), into a fresh root;
#   native  times, on the host, MariaDB started as mysql on the same data
#           directory until its socket answers, the same account made by
#           the same client command, Apache started with the same
#           configuration (its document root the host's copy of the site),
#           until the PHP page answers 200 with its row; then both are
#           stopped (not timed).
# The first `up` is checked: under plain chroot (with the summary's mounts)
# both servers start from the jail and the page answers its row.
#
# Prints a markdown table of medians to stdout and OUT/lamp.md.
# Needs root, mariadb-server, apache2, libapache2-mod-php, php-mysql, curl,
# cargo; port 8089 free and no MariaDB on /run/mysqld/mysqld.sock.

set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
REPS=5
OUT=$REPO/bench/results
BIN=

while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--jailtrace) BIN=$2; shift 2 ;;
	*) echo "usage: $0 [--reps N] [--out DIR] [--jailtrace BIN]" >&2; exit 2 ;;
	esac
done

die() { echo "lamp.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
for f in /usr/sbin/mariadbd /usr/bin/mariadb-install-db /usr/sbin/apache2 \
	/usr/lib/apache2/modules/libphp8.2.so /etc/php/8.2/apache2/conf.d/20-mysqli.ini /usr/bin/curl; do
	[ -e "$f" ] || die "needs $f (apt-get install mariadb-server apache2 libapache2-mod-php php-mysql curl)"
done
[ -e /run/mysqld/mysqld.sock ] && die "a MariaDB already listens on /run/mysqld/mysqld.sock"
curl -s -o /dev/null http://127.0.0.1:8089/ && die "port 8089 is taken"

mkdir -p "$OUT"
WORK=$(mktemp -d /var/tmp/jailtrace-lamp-bench.XXXXXX)
chmod 755 "$WORK"
MADE_RUN_DIR=
cleanup() {
	pkill -f "$WORK" 2>/dev/null
	sleep 0.5
	for m in $(grep -o "$WORK[^ ]*" /proc/mounts | sort -r); do umount -l "$m"; done
	rm -rf "$WORK"
	[ -n "$MADE_RUN_DIR" ] && rmdir /run/mysqld 2>/dev/null
}
trap cleanup EXIT

if [ -z "$BIN" ]; then
	(cd "$REPO" && cargo build --release --quiet) || exit 1
	BIN=$REPO/target/release/jailtrace
fi
J=$WORK/jailtrace
cp "$BIN" "$J"

# The example, beside its own data directory.
cp "$REPO/examples/lamp.jail.toml" "$WORK/"
mkdir -p "$WORK/lamp"
cp -r "$REPO/examples/lamp/site" "$WORK/lamp/site"
chmod -R a+rX "$WORK/lamp"
mariadb-install-db --user=mysql --datadir="$WORK/lamp/data" \
	--auth-root-authentication-method=socket --skip-test-db >"$WORK/install.log" 2>&1 ||
	die "mariadb-install-db failed: $(tail -3 "$WORK/install.log")"
mkdir -p /run/apache2 /run/lock/apache2
chown www-data /run/lock/apache2
APACHE_ENV=(PATH=/usr/sbin:/usr/bin:/sbin:/bin APACHE_RUN_USER=www-data APACHE_RUN_GROUP=www-data
	APACHE_PID_FILE=/var/run/apache2/apache2.pid APACHE_RUN_DIR=/var/run/apache2
	APACHE_LOCK_DIR=/var/lock/apache2 APACHE_LOG_DIR=/var/log/apache2 LANG=C)
DB_ARGS=(--no-defaults --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock
	--pid-file=/run/mysqld/mysqld.pid --skip-networking)
SETUP="CREATE DATABASE IF NOT EXISTS lamp; CREATE USER IF NOT EXISTS lamp@localhost IDENTIFIED BY 'lamp'; GRANT ALL ON lamp.* TO lamp@localhost"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# page_ok: the PHP page answers 200 with its row.
page_ok() {
	local body
	body=$(curl -s -f --max-time 5 http://127.0.0.1:8089/) && [[ $body == row* ]]
}

wait_for() { # wait_for SECONDS CMD...: poll every 20 ms
	local end=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.02
	done
}

# native: prints the milliseconds from the first start to the page's row.
native() {
	local start db web ms
	[ -d /run/mysqld ] || { mkdir /run/mysqld && chown mysql:mysql /run/mysqld && MADE_RUN_DIR=1; }
	sed "s|/srv/lamp|$WORK/lamp/site|g" "$WORK/lamp/site/apache2.conf" >"$WORK/native.conf"
	start=$(now_ms)
	setsid setpriv --reuid=mysql --regid=mysql --init-groups /usr/sbin/mariadbd \
		"${DB_ARGS[@]/\/var\/lib\/mysql/$WORK/lamp/data}" >"$WORK/native-db.log" 2>&1 &
	db=$!
	wait_for 30 test -S /run/mysqld/mysqld.sock || { kill $db; return 1; }
	wait_for 30 mariadb --socket=/run/mysqld/mysqld.sock -e "$SETUP" 2>/dev/null || { kill $db; return 1; }
	# setsid: Apache signals its whole process group when it stops.
	setsid env -i "${APACHE_ENV[@]}" /usr/sbin/apache2 -f "$WORK/native.conf" -DFOREGROUND >"$WORK/native-web.log" 2>&1 &
	web=$!
	wait_for 30 page_ok
	local ok=$?
	ms=$(($(now_ms) - start))
	kill $web $db
	wait $web $db 2>/dev/null
	[ $ok = 0 ] || return 1
	echo "$ms"
}

# up: prints the milliseconds of `jailtrace up --fresh`.
up() {
	local start ms
	start=$(now_ms)
	(cd "$WORK" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$J" up --fresh lamp.jail.toml) \
		>"$WORK/up.log" 2>&1 || return 1
	ms=$(($(now_ms) - start))
	echo "$ms"
}

# serves: the jail just made starts both servers under plain chroot and the
# page answers its row.
serves() {
	local root=$WORK/lamp.jail ok=1
	mount --bind "$WORK/lamp/data" "$root/var/lib/mysql"
	mount --bind "$WORK/lamp/site" "$root/srv/lamp" && mount -o remount,bind,ro "$root/srv/lamp"
	mount -t proc -o ro proc "$root/proc"
	setsid chroot --userspec=mysql:mysql "$root" /usr/sbin/mariadbd "${DB_ARGS[@]}" >"$WORK/jail-db.log" 2>&1 &
	local db=$!
	wait_for 30 test -S "$root/run/mysqld/mysqld.sock"
	setsid env -i "${APACHE_ENV[@]}" chroot "$root" /usr/sbin/apache2 -f /srv/lamp/apache2.conf -DFOREGROUND \
		>"$WORK/jail-web.log" 2>&1 &
	local web=$!
	wait_for 30 page_ok && ok=0
	kill $web $db
	wait $web $db 2>/dev/null
	umount "$root/proc" "$root/srv/lamp" "$root/var/lib/mysql"
	return $ok
}

declare -a UP NATIVE
for rep in $(seq "$REPS"); do
	u=$(up) || die "jailtrace up failed: $(tail -20 "$WORK/up.log")"
	if [ "$rep" = 1 ]; then
		serves || die "the jail does not serve the page under plain chroot"
		echo "check: the jail serves the PHP page's row under plain chroot" >&2
	fi
	n=$(native) || die "the servers do not answer the page natively: $(tail -5 "$WORK"/native-*.log)"
	UP+=("$u")
	NATIVE+=("$n")
	echo "rep $rep: up ${u} ms, native ${n} ms" >&2
done

read -r ENTRIES FILES MIB < <(/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
files = [e for e in m["entries"] if e["kind"] == "file"]
print(len(m["entries"]), len(files), "%.1f" % (sum(e.get("size", 0) for e in files) / 2**20))' "$WORK/lamp.jail.json")

/usr/bin/python3 - "$OUT/lamp.md" "$REPS" "$ENTRIES" "$FILES" "$MIB" "${UP[*]}" "${NATIVE[*]}" <<'EOF'
import statistics, sys
out, reps, entries, files, mib, up, native = sys.argv[1:]
up = [int(x) for x in up.split()]
native = [int(x) for x in native.split()]
mu, mn = statistics.median(up), statistics.median(native)
lines = [
    f"LAMP jail (examples/lamp.jail.toml): {entries} entries, {files} files, {mib} MiB; median of {reps}.",
    "",
    "| what | median (ms) | min–max (ms) |",
    "|---|--:|--:|",
    f"| `jailtrace up --fresh` (make the jail: discover + verify, exercises) | {mu:.0f} | {min(up)}–{max(up)} |",
    f"| native: both servers start and the page answers its row | {mn:.0f} | {min(native)}–{max(native)} |",
    "",
    f"Ratio: making the jail takes {mu / mn:.1f}× the native start.",
]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text, end="")
EOF
