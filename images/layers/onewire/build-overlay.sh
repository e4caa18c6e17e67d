#!/bin/sh
# onewire layer, run inside the target root (chroot): compile the w1-gpio overlay with dtc into
# /usr/lib/storeedge/boot/overlays (install-boot-slot copies it to the boot slot).
set -eu
src=/tmp/storeedge-build/layers/onewire/w1-gpio.dts
out=/usr/lib/storeedge/boot/overlays
install -d "$out"
dtc -@ -q -I dts -O dtb -o "$out/w1-gpio.dtbo" "$src"
# The firmware resolves &gpio through the base tree's __symbols__: say if they are missing.
ver=$(ls /usr/lib | sed -n 's/^linux-image-//p' | head -n1)
if ! fdtget -l "/usr/lib/linux-image-$ver/broadcom/bcm2711-rpi-4-b.dtb" /__symbols__ >/dev/null 2>&1; then
    echo "build-overlay: WARNING: bcm2711-rpi-4-b.dtb has no __symbols__; the firmware cannot apply w1-gpio.dtbo" >&2
fi
echo "build-overlay: $out/w1-gpio.dtbo ($(wc -c < "$out/w1-gpio.dtbo") bytes)"
