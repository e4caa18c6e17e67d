#!/bin/sh
# onewire layer, run inside the target root (chroot): add a w1-gpio 1-Wire bus on GPIO 4 to
# the Pi 4 / CM4 device trees.  Debian's trees carry no __symbols__, so the Pi firmware cannot
# apply an overlay (dtoverlay=) that points at the GPIO controller; the trees themselves are
# patched instead, by path.  install-boot-slot copies /usr/lib/storeedge/boot/dtbs/ in place
# of the kernel's own trees, so every update bundle carries the patched trees too.
set -eu
PIN=4
ver=$(ls /usr/lib | sed -n 's/^linux-image-//p' | head -n1)
src=/usr/lib/linux-image-$ver/broadcom
out=/usr/lib/storeedge/boot/dtbs
install -d "$out"
for dtb in "$src"/bcm2711-rpi-*.dtb; do
    name=$(basename "$dtb")
    dtc -q -I dtb -O dts -o /tmp/onewire.dts "$dtb"
    cat >> /tmp/onewire.dts <<DTS
/ {
	onewire {
		compatible = "w1-gpio";
		gpios = <&{/soc/gpio@7e200000} $PIN 0>;
		status = "okay";
	};
};
DTS
    dtc -q -I dts -O dtb -o "$out/$name" /tmp/onewire.dts
    [ "$(fdtget "$out/$name" /onewire compatible)" = "w1-gpio" ]
    echo "add-onewire: $name: w1-gpio 1-Wire bus on GPIO $PIN (4.7 kOhm pull-up to 3V3)"
done
rm -f /tmp/onewire.dts
