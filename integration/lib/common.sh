# Shared helpers for the e2e suites: result accounting, checks with timeouts, apt, cleanup.
# Sourced by run.sh; expects $WORK (private temp dir) to exist.

PASSED=0
FAILED=0
SUITE=""                    # current suite name, recorded in $WORK/results
CMD_TIMEOUT=${CMD_TIMEOUT:-60}

log() { printf '%s\n' "$*" >&2; }

pass() {
    PASSED=$((PASSED + 1))
    printf 'PASS %s\n' "$1"
    printf '%s\t%s\tPASS\t\n' "$SUITE" "$1" >>"$WORK/results"
}

# fail NAME REASON: the reason is flattened to one line and cut to 400 characters.
fail() {
    local reason
    reason=$(printf '%s' "$2" | tr '\r\n\0' '  ' | tr -s ' ' | cut -c1-400)
    FAILED=$((FAILED + 1))
    printf 'FAIL %s: %s\n' "$1" "$reason"
    printf '%s\t%s\tFAIL\t%s\n' "$SUITE" "$1" "$reason" >>"$WORK/results"
}

# x CMD...: runs CMD with a timeout; stdout+stderr go to $OUT, the exit code to $RC.
# Every command of every check goes through here, so a hung runtime cannot hang the suite.
# (Shell functions run without a timeout; they only wrap quick client queries.)
x() {
    local t0=$EPOCHREALTIME
    if declare -F "$1" >/dev/null; then
        OUT=$("$@" 2>&1)
    else
        OUT=$(timeout -k 5 "$CMD_TIMEOUT" "$@" 2>&1)
    fi
    RC=$?
    printf '$ %s\n%s\n[rc=%s, %s s]\n' "$*" "$OUT" "$RC" \
        "$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $t0 }")" >>"$WORK/commands.log"
    return 0
}

# check_cmd WANT_RC PATTERN CMD...: runs CMD; returns 1 with the reason in $WHY when its exit
# code differs from WANT_RC (a number, or "nz" for any non-zero) or its output does not match
# PATTERN (an extended regex, "" for anything).
# shellcheck disable=SC2034
check_cmd() {
    local want=$1 pattern=$2
    shift 2
    x "$@"
    [ "$RC" -ne 124 ] || OUT="(timed out after $CMD_TIMEOUT s) $OUT"
    if [ "$want" = nz ]; then
        [ "$RC" -ne 0 ] || { WHY="exit 0, wanted non-zero; output: $OUT"; return 1; }
    elif [ "$RC" -ne "$want" ]; then
        WHY="exit $RC, wanted $want; output: $OUT"
        return 1
    fi
    if [ -n "$pattern" ] && ! printf '%s' "$OUT" | tr -d '\r\0' | grep -Eq -- "$pattern"; then
        WHY="output does not match /$pattern/: $OUT"
        return 1
    fi
}

# expect NAME WANT_RC PATTERN CMD...: one command, one check.
expect() {
    local name=$1 WHY=
    shift
    if check_cmd "$@"; then pass "$name"; else fail "$name" "$WHY"; fi
}

# expect_file NAME FILE WANT WANT_RC PATTERN CMD...: like expect, then FILE (on the host) must
# hold exactly WANT.
expect_file() {
    local name=$1 file=$2 want=$3 WHY=
    shift 3
    if ! check_cmd "$@"; then
        fail "$name" "$WHY"
    elif [ "$(cat "$file" 2>/dev/null)" != "$want" ]; then
        fail "$name" "$file on the host holds '$(cat "$file" 2>/dev/null)', wanted '$want'"
    else
        pass "$name"
    fi
}

# step CMD...: one step of a multi-step check; on failure sets $WHY (the caller's, usually a
# local) and returns 1.
# shellcheck disable=SC2034
step() {
    x "$@"
    [ "$RC" -eq 0 ] && return 0
    WHY="\`$*\` exited $RC: $OUT"
    return 1
}

# out_is WANT CMD...: step whose trimmed output must equal WANT.
# shellcheck disable=SC2034
out_is() {
    local want=$1
    shift
    step "$@" || return 1
    local got
    got=$(printf '%s' "$OUT" | tr -d '\r\0' | sed -e 's/[[:space:]]*$//' -e '/^$/d')
    [ "$got" = "$want" ] && return 0
    WHY="\`$*\` printed '$got', wanted '$want'"
    return 1
}

# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# apt_install PKG...: installs the missing packages through scripts/apt-install.sh (never
# removes a package: a conflict stops the run with a message naming it; waits for another
# apt's lock; `apt-get update` once if a package is unknown).
apt_install() {
    "$(dirname "${BASH_SOURCE[0]}")/../../scripts/apt-install.sh" "$@"
}

# Cleanup actions run in reverse order of registration at exit.
CLEANUPS=()
on_exit() { CLEANUPS+=("$1"); }
run_cleanups() {
    local i
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUPS[$i]}" >>"$WORK/cleanup.log" 2>&1 || true
    done
    CLEANUPS=()
}

# rm_cgroups NAME: removes the cgroup directory NAME (relative to each v1 hierarchy and the
# unified mount) depth first; only empty cgroups can be removed, which is what we want.
rm_cgroups() {
    local rel=$1 base d
    [ -n "$rel" ] || return 0
    for base in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
        d="$base$rel"
        [ -d "$d" ] || continue
        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
}

# umount_under DIR: lazily unmounts everything mounted at or below DIR (deepest first).
umount_under() {
    local dir=$1 m
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
}

# tty_cmd CMD...: CMD quoted as one string for `script -qec` (which gives it a pseudo-terminal).
tty_cmd() { printf '%q ' "$@"; }
