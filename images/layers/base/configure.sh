#!/bin/sh
# base layer, run inside the target root (chroot) by images/build.
set -eu
# Boot files are installed per slot by /usr/lib/storeedge/install-boot-slot (from images/build
# and from RAUC's post-install hook).  raspi-firmware's own kernel hooks would write into
# /boot/firmware, which is read-only and shared by both slots: remove them.
rm -f /etc/kernel/postinst.d/z50-raspi-firmware /etc/initramfs/post-update.d/z50-raspi-firmware
ln -sf /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
# No password logins; the technician's way in is the serial console app.
passwd -l root >/dev/null
chmod 0755 /usr/lib/storeedge/* 2>/dev/null || true
