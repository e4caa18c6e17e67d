# images/lib/test-bundle.sh: update bundles for the A/B test, made from a built root filesystem
# without a new build.  Source it (bash).
#
#   test_bundle_break_app ROOTFS.ext4
#       the app's entry point (/opt/storeedge/venv/bin/storeedge) in the ext4 image becomes a
#       script that says so and exits 1: the app unit never gets healthy, mark-good never
#       commits, and the next reset must boot the old slot (the fall-back case)
#   test_bundle_make KIND VERSION ROOTFS.ext4 OUT.raucb
#       a signed RAUC bundle of that root for KIND (the manifest imagegen renders, the
#       image's own hook), signed with STOREEDGE_SIGNING_CERT / STOREEDGE_SIGNING_KEY and
#       checked against STOREEDGE_KEYRING (default: the development CA in images/out/pki)
#
# Every step is checked (debugfs reports errors on stderr but exits 0: the result is read
# back); messages go to stderr prefixed "test-bundle:".

TEST_BUNDLE_IMAGES=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_BUNDLE_APP=/opt/storeedge/venv/bin/storeedge

tb_say() { printf 'test-bundle: %s\n' "$*" >&2; }

test_bundle_break_app() {
    local fs=$1 dir tmp got
    [ -f "$fs" ] || { tb_say "no such file system image: $fs"; return 1; }
    dir=$(dirname "$TEST_BUNDLE_APP")
    tmp=$(mktemp -d)
    printf '#!/bin/sh\necho "storeedge: deliberately broken app (A/B fall-back test bundle)" >&2\nexit 1\n' \
        > "$tmp/storeedge"
    printf 'cd %s\nrm storeedge\nwrite %s storeedge\nsif storeedge mode 0100755\nsif storeedge uid 0\nsif storeedge gid 0\n' \
        "$dir" "$tmp/storeedge" > "$tmp/cmds"
    debugfs -w -f "$tmp/cmds" "$fs" > "$tmp/log" 2>&1
    got=$(debugfs -R "cat $TEST_BUNDLE_APP" "$fs" 2>/dev/null)
    if [ "$got" != "$(cat "$tmp/storeedge")" ]; then
        tb_say "could not replace $TEST_BUNDLE_APP in $fs: $(grep -v '^debugfs' "$tmp/log" | head -3 | tr '\n' ' ')"
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$tmp"
    e2fsck -fn "$fs" > /dev/null 2>&1 || { tb_say "$fs is inconsistent after the edit (e2fsck -fn)"; return 1; }
    tb_say "broke the app in $(basename "$fs"): $TEST_BUNDLE_APP exits 1"
}

test_bundle_make() {
    local kind=$1 version=$2 fs=$3 out=$4 pki content rc=0
    pki=${STOREEDGE_PKI_DIR:-$TEST_BUNDLE_IMAGES/out/pki}
    local cert=${STOREEDGE_SIGNING_CERT:-$pki/signing.cert.pem}
    local key=${STOREEDGE_SIGNING_KEY:-$pki/signing.key.pem}
    local keyring=${STOREEDGE_KEYRING:-$pki/ca.cert.pem}
    content=$(mktemp -d)
    python3 - "$TEST_BUNDLE_IMAGES/imagegen.py" "$kind" "$version" > "$content/manifest.raucm" <<'PY' || rc=$?
import importlib.util, sys
spec = importlib.util.spec_from_file_location("imagegen", sys.argv[1])
gen = importlib.util.module_from_spec(spec)
sys.modules["imagegen"] = gen
spec.loader.exec_module(gen)
sys.stdout.write(gen.render_manifest(gen.load_kind(sys.argv[2]), sys.argv[3]))
PY
    [ "$rc" -eq 0 ] || { tb_say "cannot render the $kind manifest"; rm -rf "$content"; return 1; }
    cp "$TEST_BUNDLE_IMAGES/rauc/hook" "$content/hook"
    ln "$fs" "$content/rootfs.ext4" 2>/dev/null || cp "$fs" "$content/rootfs.ext4"
    rm -f "$out"
    if ! rauc bundle --cert="$cert" --key="$key" --keyring="$keyring" \
            --mksquashfs-args="$(cat "$TEST_BUNDLE_IMAGES/rauc/mksquashfs-args")" "$content" "$out" \
            > "$content/rauc.log" 2>&1; then
        tb_say "rauc bundle failed: $(tail -2 "$content/rauc.log" | tr '\n' ' ')"
        rm -rf "$content"
        return 1
    fi
    rm -rf "$content"
    rauc info --keyring="$keyring" "$out" > /dev/null 2>&1 \
        || { tb_say "$out does not verify against $keyring"; return 1; }
    tb_say "made $(basename "$out") ($kind $version, signed by $(basename "$cert"))"
}
