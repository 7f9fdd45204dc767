#!/bin/sh
# Installs what husk's build, demo and tests need on Debian 12 (as root). Idempotent and quiet
# when everything is there already.
set -eu
# strace: the crash tests kill husk at chosen system calls (tests/tests/crash.rs).
want="busybox-static strace ${HUSK_EXTRA_DEPS:-}"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    for i in 1 2 3 4 5 6; do
        if apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null; then
            break
        fi
        echo "apt-get failed (lock busy?), retrying in 10s" >&2
        sleep 10
    done
fi
if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        :
    else
        echo "cargo not found: install a Rust toolchain (rustup) first" >&2
        exit 1
    fi
fi
