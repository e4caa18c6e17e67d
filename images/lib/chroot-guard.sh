# images/lib/chroot-guard.sh: leave nothing running or mounted under a chroot.  Source it (bash).
#
#   chroot_guard ROOT WHAT        stop every process whose root is ROOT (TERM, then KILL), then
#                                 unmount everything below ROOT, deepest first; returns 1 with
#                                 one clear line naming the mount (and who holds it) otherwise
#   guard_assert_unmounted ROOT WHAT
#                                 returns 1 (and names the mounts) when anything is mounted
#                                 below ROOT: call it before du, tar, cp, mkfs -d, find ...
#   guard_mounts ROOT             mount points strictly below ROOT, deepest first (one a line)
#   guard_root_pids ROOT          pids whose /proc/PID/root is ROOT or below it
#   chroot_mount_api ROOT         mount proc, sys, dev, dev/pts for a chroot step
#
# Never lazy-unmounts (umount -l would hide a live /proc under the root and let a later tar or
# du walk into it).  Messages go to stderr, one line each, prefixed "chroot-guard:".
# GUARD_TERM_WAIT_S (default 5) and GUARD_KILL_WAIT_S (default 5) bound the waits in seconds.

guard_say() { printf 'chroot-guard: %s\n' "$*" >&2; }

# The canonical path of ROOT (no trailing slash, symlinks resolved), or fail.
guard_canon() {
    local root
    root=$(realpath -e -- "$1" 2>/dev/null) || { guard_say "no such root: $1"; return 1; }
    [ "$root" != / ] || { guard_say "refusing to guard / itself"; return 1; }
    printf '%s\n' "$root"
}

# Decode mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash).
guard_unescape() {
    printf '%b' "$(printf '%s' "$1" | sed 's/\\\([0-7][0-7][0-7]\)/\\0\1/g')"
}

# Mount points strictly below ROOT, deepest first; of two at the same depth the one mounted
# later (stacked on top, or later in mountinfo) first.
guard_mounts() {
    local root line mp
    root=$(guard_canon "$1") || return 1
    awk '{ n = split($5, parts, "/"); printf "%d\t%d\t%s\n", n, NR, $5 }' /proc/self/mountinfo \
        | sort -t "$(printf '\t')" -k1,1nr -k2,2nr | cut -f3- \
        | while IFS= read -r line; do
            mp=$(guard_unescape "$line")
            case "$mp" in "$root"/*) printf '%s\n' "$mp" ;; esac
        done
}

# Pids whose root directory is ROOT (or a directory below it): processes left in the chroot.
guard_root_pids() {
    local root dir pid link
    root=$(guard_canon "$1") || return 1
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        [ "$pid" != "$$" ] && [ "$pid" != "${BASHPID:-$$}" ] || continue
        link=$(readlink "$dir/root" 2>/dev/null) || continue
        link=${link% (deleted)}
        case "$link" in "$root"|"$root"/*) printf '%s\n' "$pid" ;; esac
    done
}

# "pid (comm)" of every process whose cwd, root or an open file is at or below PATH.
guard_holders() {
    local path=$1 dir pid hit link out=""
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        hit=0
        for link in "$dir/cwd" "$dir/root" "$dir"/fd/*; do
            case "$(readlink "$link" 2>/dev/null)" in "$path"|"$path"/*) hit=1; break ;; esac
        done
        [ "$hit" = 1 ] && out="$out${out:+, }$pid ($(cat "$dir/comm" 2>/dev/null || echo '?'))"
    done
    printf '%s\n' "${out:-no process found (a kernel user such as a loop device or a bind source?)}"
}

# Wait up to $2 seconds (0.2 s steps) until none of the pids in $1 (space separated) is alive.
guard_wait_gone() {
    local pids=$1 steps=$(( ${2:-5} * 5 )) pid alive
    while :; do
        alive=""
        for pid in $pids; do
            if kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
                alive="$alive $pid"
            fi
        done
        [ -n "$alive" ] || return 0
        [ "$steps" -gt 0 ] || { printf '%s\n' "${alive# }"; return 1; }
        steps=$((steps - 1))
        sleep 0.2
    done
}

# Stop the processes whose root is ROOT: SIGTERM, wait, SIGKILL, wait; 1 when any survives.
guard_stop_procs() {
    local root=$1 what=$2 pids left pid desc=""
    pids=$(guard_root_pids "$root" | tr '\n' ' ') || return 1
    [ -n "${pids// /}" ] || return 0
    for pid in $pids; do desc="$desc${desc:+, }$pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo '?'))"; done
    guard_say "after $what: stopping processes still running in $root: $desc"
    kill -TERM $pids 2>/dev/null || true
    left=$(guard_wait_gone "$pids" "${GUARD_TERM_WAIT_S:-5}") && return 0
    guard_say "after $what: still running after SIGTERM, sending SIGKILL: $left"
    kill -KILL $left 2>/dev/null || true
    left=$(guard_wait_gone "$left" "${GUARD_KILL_WAIT_S:-5}") && return 0
    guard_say "after $what: cannot stop processes in $root (uninterruptible?): $left"
    return 1
}

# Unmount everything below ROOT, deepest first, re-reading mountinfo after each round
# (stacked mounts); a mount that will not go is named with its error and its holders.
guard_unmount_all() {
    local root=$1 what=$2 mp err round=0 mounts
    while mounts=$(guard_mounts "$root") && [ -n "$mounts" ]; do
        round=$((round + 1))
        [ "$round" -le 20 ] || { guard_say "after $what: mounts below $root keep coming back: $(echo $mounts)"; return 1; }
        while IFS= read -r mp; do
            err=$(umount -- "$mp" 2>&1) && continue
            grep -qxF -- "$mp" < <(guard_mounts "$root") || continue   # went with its parent
            guard_say "after $what: cannot unmount $mp: ${err##*: } (held by: $(guard_holders "$mp")); not tarring, measuring or imaging a root with a live mount in it"
            return 1
        done <<< "$mounts"
    done
    return 0
}

# Stop what runs in ROOT and unmount everything below it; 0 when ROOT is clean afterwards.
chroot_guard() {
    local root what=${2:-a chroot step}
    root=$(guard_canon "$1") || return 1
    guard_stop_procs "$root" "$what" || return 1
    guard_unmount_all "$root" "$what" || return 1
    guard_assert_unmounted "$root" "$what"
}

# 1 (naming the mounts) when anything is mounted below ROOT.
guard_assert_unmounted() {
    local root mounts
    root=$(guard_canon "$1") || return 1
    mounts=$(guard_mounts "$root") || return 1
    [ -z "$mounts" ] && return 0
    guard_say "${2:-walking the root}: refused, still mounted below $root: $(echo $mounts)"
    return 1
}

# Mount the kernel API filesystems a chroot step needs (undo with chroot_guard).
chroot_mount_api() {
    local root=$1
    mount -t proc proc "$root/proc" && mount -t sysfs sys "$root/sys" \
        && mount --bind /dev "$root/dev" && mount --bind /dev/pts "$root/dev/pts"
}
