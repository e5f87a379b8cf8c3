#!/bin/busybox sh
# The HIL VM's initramfs init (tests/hil/image.py packs it with a static busybox and
# the modules listed in /modules.order, dependencies first). Debian's own initramfs
# took minutes to build under load; this loads exactly what the rig needs, mounts the
# root disk and hands over to systemd.
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
while read -r m; do
  insmod "/lib/modules/$m" || echo "HIL init: insmod $m failed"
done < /modules.order
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /newroot
if ! mount -t ext4 -o rw /dev/vda /newroot; then
  echo "HIL init: cannot mount /dev/vda"; sleep 2; poweroff -f
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
