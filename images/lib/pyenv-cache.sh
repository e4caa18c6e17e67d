# images/lib/pyenv-cache.sh: the app's Python environments, installed under qemu-user by
# layers/storeedge-app/install-storeedge.sh (pip and compileall emulated: 10-15 min, most of a
# cached rebuild), are reused while everything they are made from is unchanged.  Only the
# storeedge package itself is installed again (from the commit being built).  Source it (bash)
# after cache.sh.
#
#   pyenv_key ROOT B     16 hex digits: sha256 over the root's installed packages (dpkg status:
#                        the Python the venvs link to), the wheels in B/wheels (names and
#                        content), B/python-packages.txt, the install script, and the
#                        dependency lists of the source (B/src/setup.py, pyproject.toml)
#   pyenv_save ROOT TARBALL      cache_write of ROOT's /opt/storeedge/venv (without the files
#                                storeedge's own RECORD lists) and the wheel build env
#                                /tmp/storeedge-build/buildenv; 1 when either is missing
#   pyenv_restore TARBALL ROOT   cache_restore into ROOT (verified; 1 when absent/bad), then
#                                marks B/pyenv-cached so the install script skips both installs

PYENV_VENV=opt/storeedge/venv
PYENV_BUILDENV=tmp/storeedge-build/buildenv

pyenv_key() {
    local root=$1 b=$2
    {
        sha256sum < "$root/var/lib/dpkg/status"
        (cd "$b/wheels" && find . -maxdepth 1 -name '*.whl' -print0 | sort -z | xargs -0 -r sha256sum)
        cat "$b/python-packages.txt" 2>/dev/null || true
        sha256sum < "$b/layers/storeedge-app/install-storeedge.sh"
        cat "$b/src/setup.py" "$b/src/pyproject.toml" 2>/dev/null || true
    } | sha256sum | cut -c1-16
}

# The files of the installed storeedge distribution, relative to ROOT's venv site-packages, one
# per line (its RECORD: the package, its dist-info, its console scripts).
pyenv_storeedge_files() {
    local site=$1 record
    record=$(find "$site" -maxdepth 2 -path '*/storeedge-*.dist-info/RECORD' | head -n1)
    [ -n "$record" ] || return 1
    cut -d, -f1 "$record"
}

pyenv_save() {
    local root=$1 tarball=$2 stage site rc
    if [ ! -x "$root/$PYENV_VENV/bin/python" ] || [ ! -x "$root/$PYENV_BUILDENV/bin/pip" ]; then
        cache_say "no $PYENV_VENV or $PYENV_BUILDENV in $root: nothing cached"
        return 1
    fi
    stage=$(mktemp -d)
    mkdir -p "$stage/$(dirname "$PYENV_VENV")" "$stage/$(dirname "$PYENV_BUILDENV")"
    cp -a "$root/$PYENV_VENV" "$stage/$PYENV_VENV" && cp -a "$root/$PYENV_BUILDENV" "$stage/$PYENV_BUILDENV" \
        || { rm -rf "$stage"; cache_say "copying the Python environments failed: nothing cached"; return 1; }
    site=$(find "$stage/$PYENV_VENV/lib" -maxdepth 2 -type d -name site-packages | head -n1)
    if [ -z "$site" ] || ! pyenv_storeedge_files "$site" > "$stage/.storeedge-files"; then
        rm -rf "$stage"
        cache_say "storeedge is not installed in $PYENV_VENV (no RECORD): nothing cached"
        return 1
    fi
    # RECORD paths are relative to site-packages (scripts as ../../../bin/storeedge).
    (cd "$site" && tr '\n' '\0' < "$stage/.storeedge-files" | xargs -0 -r rm -f --)
    find "$site" -maxdepth 1 -type d \( -name storeedge -o -name 'storeedge-*.dist-info' \) -exec rm -rf {} +
    rm -f "$stage/.storeedge-files"
    cache_write "$stage" "$tarball"
    rc=$?
    rm -rf "$stage"
    return "$rc"
}

pyenv_restore() {
    local tarball=$1 root=$2
    [ -e "$tarball" ] || return 1
    cache_restore "$tarball" "$root" || return 1
    touch "$root/tmp/storeedge-build/pyenv-cached"
}
