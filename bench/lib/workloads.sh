# Sourced by run.sh, rootless.sh and targets.sh: the workloads they benchmark.
# shellcheck shell=bash

# shellcheck disable=SC2034 # used by the scripts that source this file
WORKLOADS=(date bash python-ssl perl git sh-path dd fork-exec python-imports find-share output)

# workload_argv NAME: set ARGV to the workload's command line.
workload_argv() {
	case $1 in
	date) ARGV=(/bin/date) ;;
	bash) ARGV=(/bin/bash -c 'id; whoami; ls -l /') ;;
	python-ssl) ARGV=(/usr/bin/python3 -c "import ssl, json, sqlite3, hashlib; print('ok')") ;;
	perl) ARGV=(/usr/bin/perl -MPOSIX -e 'print strftime("%Y", localtime), "\n"') ;;
	git) ARGV=(/usr/bin/git --version) ;;
	sh-path) ARGV=(/bin/sh -c 'uname -a; hostname; touch /tmp/x; date') ;;
	dd) ARGV=(/bin/dd if=/dev/zero of=/dev/null bs=1 count=200000) ;;
	fork-exec) ARGV=(/bin/sh -c 'for i in $(seq 300); do /bin/true; done') ;;
	python-imports) ARGV=(/usr/bin/python3 -c 'import email, json, http.client, xml.dom.minidom, asyncio, decimal') ;;
	# A listing-heavy program: 35,000 names seen, 1,500 directories used.
	find-share) ARGV=(/usr/bin/find /usr/share -maxdepth 3) ;;
	# 6.9 MB on stdout, which jailtrace reads from a pipe in the verifying run.
	output) ARGV=(/usr/bin/seq 1 1000000) ;;
	# The ten modules issue 16's Python target names (targets.sh only).
	python-issue16) ARGV=(/usr/bin/python3 -c 'import json, ssl, sqlite3, hashlib, email, http.client, xml.etree.ElementTree, asyncio, decimal, unittest') ;;
	*) return 1 ;;
	esac
}
