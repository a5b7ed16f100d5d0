#!/bin/sh
# Make sure every Debian package that building, testing or demonstrating lockhub
# needs is installed. As root, installs what is missing with apt-get (running
# "apt-get update" first only if a package cannot be found); otherwise prints the
# exact command to run and fails.
#
# usage: scripts/install-deps.sh [build|check|demo|bench|fuzz]...
set -eu

build_pkgs="gcc make pkg-config libsystemd-dev libmosquitto-dev libsqlite3-dev \
libsodium-dev libjson-c-dev"
check_pkgs="libcmocka-dev dbus-daemon mosquitto mosquitto-clients python3 python3-bleak \
systemd man-db sqlite3 openssl clang libclang-rt-14-dev valgrind"
demo_pkgs="dbus-daemon mosquitto mosquitto-clients python3 systemd"

want="$build_pkgs"
[ $# -eq 0 ] && set -- build
for what in "$@"; do
	case "$what" in
	build) ;;
	check|fuzz|bench) want="$want $check_pkgs" ;;
	demo) want="$want $demo_pkgs" ;;
	*) echo "install-deps: unknown set '$what' (build, check, demo, bench, fuzz)" >&2; exit 2 ;;
	esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-deps: dpkg-query not found; this script knows Debian 12 packages only." >&2
	echo "install-deps: install the equivalents of: $want" >&2
	exit 1
fi

missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages:$missing" >&2
	echo "install-deps: apt-get needs root; run this and try again:" >&2
	echo "    sudo apt-get install -y$missing" >&2
	exit 1
fi

echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $missing >/dev/null 2>&1; then
	apt-get update -q >/dev/null
	apt-get install -y --no-install-recommends $missing
fi
