#!/usr/bin/env bash
# Makes sure redis-server is installed. Tests and `make run` start their own redis-server on
# loopback, so this only installs the program and never starts the system's Redis service.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
	exit 0
fi

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "ensure-redis: redis-server is missing and installing it needs root; run this script as root or install redis-server yourself." >&2
		exit 1
	fi
}

if command -v apt-get >/dev/null 2>&1; then
	echo "ensure-redis: installing redis-server with apt-get" >&2
	# Debian's package starts its service on 6379 unless a policy-rc.d forbids it (exit 101); a
	# temporary one keeps the system as it was, and `make run` free to use that port.
	policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 0755 $policy"
		trap 'as_root rm -f "$policy"' EXIT
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server
elif command -v brew >/dev/null 2>&1; then
	# Homebrew starts nothing unless asked to with `brew services`.
	echo "ensure-redis: installing redis with Homebrew" >&2
	brew install redis
else
	echo "ensure-redis: redis-server is not installed and neither apt-get nor Homebrew is available; install Redis 7 or newer so that redis-server is on PATH, then run again." >&2
	exit 1
fi

if ! command -v redis-server >/dev/null 2>&1; then
	echo "ensure-redis: the install finished but redis-server is still not on PATH; add its directory to PATH and run again." >&2
	exit 1
fi
