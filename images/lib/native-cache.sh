# images/lib/native-cache.sh: each compiled native kernel (Cython -> C -> .so under qemu-user,
# 2-5 min each) is cached on its own, so a change to one kernel recompiles only that one.
# Source it (bash) after cache.sh.
#
#   native_kernels SRC              the kernels' module names (SRC/native/_*_cy.pyx), one a line
#   native_key SRC KERNEL COMMON    16 hex digits: sha256 over the kernel's .pyx, every shared
#                                   native/*.pxd, *.pxi and *.h, and COMMON (a string naming
#                                   what every kernel is built with: compiler day, setup.py,
#                                   install script, wheels)
#   native_restore CACHE SRC COMMON for each kernel whose cache CACHE/native-aarch64-KERNEL-KEY.tar
#                                   verifies: its .so (under SRC/build) and generated .c, stamped
#                                   now so setuptools and Cython skip it; prints the names
#   native_save CACHE SRC COMMON KERNEL...   cache_write of those kernels' .so and .c (after a
#                                   build); 1 when any could not be cached

native_kernels() {
    local pyx
    for pyx in "$1"/native/_*_cy.pyx; do
        if [ -e "$pyx" ]; then basename "$pyx" .pyx; fi
    done
}

native_key() {
    local src=$1 kernel=$2 common=$3
    {
        sha256sum < "$src/native/$kernel.pyx"
        (cd "$src/native" && find . -maxdepth 1 \( -name '*.pxd' -o -name '*.pxi' -o -name '*.h' \) \
            -print0 | sort -z | xargs -0 -r sha256sum)
        printf '%s\n' "$common"
    } | sha256sum | cut -c1-16
}

native_tar() {
    printf '%s/native-aarch64-%s-%s.tar\n' "$1" "$3" "$(native_key "$2" "$3" "$4")"
}

native_restore() {
    local cache=$1 src=$2 common=$3 kernel tar stage
    for kernel in $(native_kernels "$src"); do
        tar=$(native_tar "$cache" "$src" "$kernel" "$common")
        [ -e "$tar" ] || continue
        stage=$(mktemp -d)
        if cache_restore "$tar" "$stage"; then
            find "$stage" -type f -exec touch -d "@$(date +%s)" {} +
            cp -a "$stage/." "$src/" && echo "$kernel"
        fi
        rm -rf "$stage"
    done
}

native_save() {
    local cache=$1 src=$2 common=$3 kernel tar stage rc=0
    shift 3
    for kernel in "$@"; do
        tar=$(native_tar "$cache" "$src" "$kernel" "$common")
        stage=$(mktemp -d)
        if (cd "$src" && { find build -path "*/storeedge/native/${kernel}.*.so"; ls "native/$kernel.c"; }) \
                > "$stage/.list" 2>/dev/null \
                && grep -q '\.so$' "$stage/.list" && grep -q '\.c$' "$stage/.list" \
                && (cd "$src" && xargs -a "$stage/.list" cp -a --parents -t "$stage/") \
                && rm -f "$stage/.list" && cache_write "$stage" "$tar"; then
            :
        else
            cache_say "native kernel $kernel: no .so or .c in $src to cache"
            rc=1
        fi
        rm -rf "$stage"
    done
    return "$rc"
}
