#!/bin/sh
# Installs what husk's build, demo and tests need on Debian 12 (as root). Idempotent and quiet
# when everything is there already.
set -eu
# Packages go through apt-install.sh: only missing ones, never removing a package.
# strace: the crash tests kill husk at chosen system calls (tests/tests/crash.rs).
# uidmap: newuidmap/newgidmap for the rootless tests (issue 12).
"$(dirname "$0")/apt-install.sh" busybox-static strace uidmap ${HUSK_EXTRA_DEPS:-}
if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        :
    else
        echo "cargo not found: install a Rust toolchain (rustup) first" >&2
        exit 1
    fi
fi
