#!/bin/sh
# readonly-root layer, run inside the target root (chroot) by images/build.
set -eu
# Empty machine-id on a read-only root: systemd makes a transient one at every boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -sf /etc/machine-id /var/lib/dbus/machine-id
install -d -m 0755 /data /boot/firmware /usr/share/storeedge/skel
# /var/lib/systemd lives on /data (bind mount); keep the image's copy as the seed.
rm -rf /usr/share/storeedge/skel/var-lib-systemd
cp -a /var/lib/systemd /usr/share/storeedge/skel/var-lib-systemd
chmod 0755 /usr/lib/storeedge/data-init
