#!/bin/bash
# Run inside the VM by hil-rig.service with the shared folder at $1 (default /mnt/hil).
share="${1:-/mnt/hil}"
echo "HIL rig.sh: kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime) s"
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
exec /opt/tiengmo/venv/bin/python "$share/rig_vm.py" "$share"
