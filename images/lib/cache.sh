# images/lib/cache.sh: the bootstrap cache, written only when complete, verified on reuse.
# Source it (bash) after images/lib/chroot-guard.sh.
#
#   cache_write ROOT TARBALL     tar ROOT (numeric owners, xattrs such as file capabilities;
#                                nothing may be mounted below it) into TARBALL.part.PID,
#                                check tar's exit status, fsync, then rename it and its
#                                TARBALL.sha256 into place; on any failure no cache file is left
#   cache_verify TARBALL         0 when TARBALL and TARBALL.sha256 exist and agree; otherwise
#                                says why, deletes both and returns 1 (the caller rebuilds)
#   cache_restore TARBALL ROOT   cache_verify, then extract into ROOT (1 on any failure)
#
# Messages go to stderr, one line each, prefixed "cache:".

cache_say() { printf 'cache: %s\n' "$*" >&2; }

# Remove the part files of one write (and never anything else).
cache_drop_parts() { rm -f -- "$1.part.$2" "$1.sha256.part.$2"; }

cache_write() {
    local root=$1 tarball=$2 part sum rc
    guard_assert_unmounted "$root" "caching the bootstrap" || return 1
    part=$tarball.part.$$
    rm -f -- "$part" "$tarball.sha256.part.$$"
    rc=0
    tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -cf "$part" . || rc=$?
    if [ "$rc" -ne 0 ]; then
        cache_drop_parts "$tarball" "$$"
        cache_say "tar exited with status $rc while archiving $root: no cache written"
        return 1
    fi
    sum=$(sha256sum < "$part" | cut -d' ' -f1) || { cache_drop_parts "$tarball" "$$"; return 1; }
    printf '%s  %s\n' "$sum" "$(basename -- "$tarball")" > "$tarball.sha256.part.$$"
    if ! sync -- "$part" "$tarball.sha256.part.$$"; then
        cache_drop_parts "$tarball" "$$"
        cache_say "fsync of $part failed: no cache written"
        return 1
    fi
    # The tarball first: a crash between the two renames leaves a tarball without its
    # checksum, which cache_verify discards.
    mv -f -- "$part" "$tarball" && mv -f -- "$tarball.sha256.part.$$" "$tarball.sha256" \
        && sync -- "$(dirname -- "$tarball")" \
        || { rm -f -- "$tarball" "$tarball.sha256"; cache_drop_parts "$tarball" "$$"; \
             cache_say "could not move $part into place: no cache written"; return 1; }
    cache_say "wrote $(basename -- "$tarball") ($(du -h -- "$tarball" | cut -f1), sha256 $sum)"
}

cache_verify() {
    local tarball=$1 want got
    [ -e "$tarball" ] || return 1
    if [ ! -s "$tarball.sha256" ]; then
        cache_say "$(basename -- "$tarball") has no checksum file (interrupted write?): discarded, rebuilding"
        rm -f -- "$tarball" "$tarball.sha256"
        return 1
    fi
    want=$(cut -d' ' -f1 < "$tarball.sha256")
    got=$(sha256sum < "$tarball" | cut -d' ' -f1)
    if [ "$want" != "$got" ]; then
        cache_say "$(basename -- "$tarball") is corrupt or truncated (sha256 $got, expected $want): discarded, rebuilding"
        rm -f -- "$tarball" "$tarball.sha256"
        return 1
    fi
    return 0
}

cache_restore() {
    local tarball=$1 root=$2
    cache_verify "$tarball" || return 1
    mkdir -p -- "$root"
    if ! tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xf "$tarball"; then
        cache_say "extracting $(basename -- "$tarball") failed: discarded, rebuilding"
        rm -f -- "$tarball" "$tarball.sha256"
        return 1
    fi
}
