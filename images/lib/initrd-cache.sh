# images/lib/initrd-cache.sh: the initrd made by update-initramfs (5-25 min under qemu-user)
# is reused while everything it is made from is unchanged.  Source it (bash) after cache.sh.
#
#   initrd_key ROOT     16 hex digits: sha256 over the installed packages (dpkg status), the
#                       kernel versions, and every file under the root's initramfs-tools,
#                       modprobe.d, udev and /etc/default configuration
#   initrd_save ROOT TARBALL      cache_write of ROOT/boot/initrd.img-* (must exist)
#   initrd_restore TARBALL ROOT   cache_restore into ROOT/boot (verified; 1 when absent/bad)

initrd_key() {
    local root=$1 dir
    {
        sha256sum < "$root/var/lib/dpkg/status"
        ls "$root/lib/modules"
        for dir in etc/initramfs-tools usr/share/initramfs-tools etc/modprobe.d \
                   usr/lib/modprobe.d lib/modprobe.d etc/udev etc/default; do
            [ -d "$root/$dir" ] || continue
            (cd "$root" && find "$dir" -type f -print0 | sort -z | xargs -0 -r sha256sum)
        done
    } | sha256sum | cut -c1-16
}

initrd_save() {
    local root=$1 tarball=$2 stage
    stage=$(mktemp -d)
    if ! cp -a "$root"/boot/initrd.img-* "$stage/" 2>/dev/null; then
        rm -rf "$stage"
        cache_say "no initrd in $root/boot: nothing cached"
        return 1
    fi
    cache_write "$stage" "$tarball"
    local rc=$?
    rm -rf "$stage"
    return "$rc"
}

initrd_restore() {
    local tarball=$1 root=$2
    [ -e "$tarball" ] || return 1
    cache_restore "$tarball" "$root/boot"
}
