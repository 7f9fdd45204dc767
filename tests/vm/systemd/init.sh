#!/bin/sh
# tests/vm/systemd/init.sh - /init of the systemd VM lane's initramfs. run.sh adds it to a
# private copy of the v2vm initramfs (tests/vm/setup.sh), keeping the v2vm init as
# /init.v2vm. Stage 1 is the v2vm lane's own (host / overlaid, cgroup2 mounted, the work and
# control dirs shared); its switch_root comes back here with "stage2", which starts systemd
# as PID 1 with one target: a oneshot service that runs /run/v2vm/cmd.sh, stores its exit
# status in /run/v2vm/rc and powers off. With systemd.unified_cgroup_hierarchy=0 on the
# kernel command line (run.sh --v1) stage 1's cgroup2 mount is taken away again, so that
# systemd mounts the hybrid layout itself (tmpfs, the v1 hierarchies, cgroup2 at unified).
G=/run/.v2vm
case "${1:-}" in
stage2) ;;
*) . /init.v2vm; exit 1 ;;   # runs stage1, which never returns
esac

BB=$G/bin/busybox
C=/run/v2vm
$BB mount --make-rshared /
$BB hostname husk-systemd-vm
# The host root may hold /.dockerenv: systemd then reads its options from PID 1's command
# line, not the kernel's, so the hierarchy choice is passed on to it there too.
HIER=
case " $($BB cat /proc/cmdline) " in
*" systemd.unified_cgroup_hierarchy=0 "*)
    $BB umount /sys/fs/cgroup || echo "husk-systemd-vm: umount /sys/fs/cgroup failed" >> $C/guest.log
    HIER=systemd.unified_cgroup_hierarchy=0 ;;
esac
U=/etc/systemd/system
$BB mkdir -p $U
$BB cat > $U/husk-vm.target <<'UNIT'
[Unit]
Description=husk systemd VM lane
Requires=husk-vm-test.service
After=husk-vm-test.service
UNIT
$BB cat > $U/husk-vm-test.service <<UNIT
[Unit]
Description=husk tests under systemd
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=$G/bin/sh $G/run-test.sh
TimeoutStartSec=infinity
StandardOutput=kmsg
StandardError=kmsg
UNIT
$BB cat > $G/run-test.sh <<SCRIPT
$BB env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \\
    /bin/bash $C/cmd.sh < /dev/null > $C/stdout 2> $C/stderr
rc=\$?
echo \$rc > $C/rc.tmp && $BB mv $C/rc.tmp $C/rc || echo \$rc > $C/rc
$BB sync
$BB poweroff -f
SCRIPT
if [ ! -x /lib/systemd/systemd ]; then
    echo "husk-systemd-vm: /lib/systemd/systemd missing in the host root" >> $C/guest.log
    echo 125 > $C/rc
    $BB poweroff -f
fi
exec /lib/systemd/systemd --unit=husk-vm.target --show-status=false $HIER
