#!/usr/bin/env bash
# Makes sure the programs the tests and `make run` need are installed: redis-server (tests and
# `make run` start their own on loopback, so this never starts the system's Redis service) and
# promtool (make test checks and unit-tests the Prometheus alert rules in deploy/prometheus/ with
# it), and chromium (the console's browser test drives it headless). It installs only what is
# missing and starts no service. `make run` asks for redis-server only.
set -euo pipefail

# Arguments name the programs to ensure (redis-server, promtool, chromium); none means all.
wanted=("$@")
if [[ ${#wanted[@]} -eq 0 ]]; then
	wanted=(redis-server promtool chromium)
fi
missing=()
for w in "${wanted[@]}"; do
	case $w in
	# The Redis Cluster tests create their cluster with redis-cli, which comes with redis-server.
	redis-server) { command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 || missing+=("$w") ;;
	promtool | chromium) command -v "$w" >/dev/null 2>&1 || missing+=("$w") ;;
	*)
		echo "ensure-deps: unknown program $w; this script installs redis-server, promtool and chromium." >&2
		exit 2
		;;
	esac
done
if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "ensure-deps: ${missing[*]} missing and installing needs root; run this script as root or install them yourself." >&2
		exit 1
	fi
}

if command -v apt-get >/dev/null 2>&1; then
	# Debian ships promtool in the prometheus package, redis-server in its own.
	pkgs=()
	for m in "${missing[@]}"; do
		case $m in
		redis-server) pkgs+=(redis-server redis-tools) ;;
		promtool) pkgs+=(prometheus) ;;
		chromium) pkgs+=(chromium) ;;
		esac
	done
	echo "ensure-deps: installing ${pkgs[*]} with apt-get" >&2
	# Both packages start their service (Redis on 6379, Prometheus on 9090, kpi's gRPC port) unless
	# a policy-rc.d forbids it (exit 101); a temporary one keeps the system as it was and those
	# ports free.
	policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 0755 $policy"
		trap 'as_root rm -f "$policy"' EXIT
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
elif command -v brew >/dev/null 2>&1; then
	# Homebrew starts nothing unless asked to with `brew services`; its prometheus formula
	# carries promtool.
	pkgs=()
	for m in "${missing[@]}"; do
		case $m in
		redis-server) pkgs+=(redis) ;;
		promtool) pkgs+=(prometheus) ;;
		chromium) pkgs+=(chromium) ;;
		esac
	done
	echo "ensure-deps: installing ${pkgs[*]} with Homebrew" >&2
	brew install "${pkgs[@]}"
else
	echo "ensure-deps: ${missing[*]} not installed and neither apt-get nor Homebrew is available; install Redis 7 or newer (redis-server), Prometheus 2.x (promtool) and Chromium (chromium) so that both are on PATH, then run again." >&2
	exit 1
fi

for m in "${missing[@]}"; do
	if ! command -v "$m" >/dev/null 2>&1; then
		echo "ensure-deps: the install finished but $m is still not on PATH; add its directory to PATH and run again." >&2
		exit 1
	fi
done
