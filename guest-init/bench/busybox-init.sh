#!/bin/busybox sh
B=/bin/busybox
echo "<3>bench start" > /dev/kmsg
$B mount -t proc -o nosuid,nodev,noexec proc /proc
$B mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
$B mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
IFS=,
for m in $MODS; do $B modprobe $m || exit 1; done
unset IFS
echo "<3>bench modules" > /dev/kmsg
$B mkdir -p /dev/pts /dev/shm /run /tmp
$B mount -t devpts -o nosuid,noexec,mode=0620,ptmxmode=0666 devpts /dev/pts
$B mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm
$B mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
$B mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
$B mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
$B ln -sf pts/ptmx /dev/ptmx
$B ln -sf /proc/self/fd /dev/fd
$B ln -sf /proc/self/fd/0 /dev/stdin
$B ln -sf /proc/self/fd/1 /dev/stdout
$B ln -sf /proc/self/fd/2 /dev/stderr
$B ip link set lo up
$B hostname mvm
echo "<3>bench exec" > /dev/kmsg
/bin/probe exit 0
echo "<3>bench code=$?" > /dev/kmsg
$B poweroff -f
