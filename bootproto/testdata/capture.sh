#!/bin/bash
# capture.sh - capture QEMU's fw_cfg files for `-M microvm` into testdata/microvm-qemu7.2/.
#
# Boots the Debian cloud kernel under QEMU microvm (TCG, qboot) with a busybox-static
# initramfs whose /init loads the kernel's qemu_fw_cfg driver and prints each wanted
# /sys/firmware/qemu_fw_cfg/by_name/<file>/raw as base64 between marker lines on the
# serial console. The host decodes the markers into binary files.
#
# Not run by CI. Needs: Debian 12 (bookworm), qemu-system-x86 (7.2), busybox-static,
# cpio, coreutils; network for apt-get download (no root needed). Scratch: $WORK.
#
# Usage: bootproto/testdata/capture.sh [OUTDIR]
#   OUTDIR  default: the microvm-qemu7.2/ directory next to this script
#   WORK    scratch directory (default /tmp/bootproto-capture)
#   KPKG    kernel package (default: what linux-image-cloud-amd64 depends on)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/microvm-qemu7.2}
WORK=${WORK:-/tmp/bootproto-capture}
QEMU=${QEMU:-qemu-system-x86_64}
QBOOT=${QBOOT:-/usr/share/qemu/qboot.rom}
FILES="etc/table-loader etc/acpi/tables etc/acpi/rsdp etc/e820"
mkdir -p "$WORK" "$OUT"

# 1. The kernel (bzImage + the qemu_fw_cfg module, CONFIG_FW_CFG_SYSFS=m).
KPKG=${KPKG:-$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)}
KVER=${KPKG#linux-image-}
if [ ! -f "$WORK/kernel/boot/vmlinuz-$KVER" ]; then
    mkdir -p "$WORK/deb"
    (cd "$WORK/deb" && apt-get download "$KPKG")
    rm -rf "$WORK/kernel"
    dpkg -x "$WORK"/deb/"$KPKG"_*.deb "$WORK/kernel"
fi
KERNEL=$WORK/kernel/boot/vmlinuz-$KVER
MOD=$(find "$WORK/kernel/lib/modules/$KVER" -name 'qemu_fw_cfg.ko*' | head -n1)
[ -n "$MOD" ] || { echo "qemu_fw_cfg module not found in $KPKG" >&2; exit 1; }

# 2. The initramfs.
ST=$WORK/initramfs.d
rm -rf "$ST"; mkdir -p "$ST"/{bin,dev,proc,sys}
cp /bin/busybox "$ST/bin/busybox"
for a in sh mount insmod base64 cat echo poweroff sleep ls; do ln -s busybox "$ST/bin/$a"; done
case $MOD in
    *.xz) xz -dc "$MOD" > "$ST/qemu_fw_cfg.ko" ;;
    *.zst) zstd -qdc "$MOD" > "$ST/qemu_fw_cfg.ko" ;;
    *) cp "$MOD" "$ST/qemu_fw_cfg.ko" ;;
esac
cat > "$ST/init" <<INIT
#!/bin/sh
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
insmod /qemu_fw_cfg.ko
for f in $FILES; do
    r=/sys/firmware/qemu_fw_cfg/by_name/\$f/raw
    if [ -r \$r ]; then
        echo "FWCFG-BEGIN \$f"
        base64 < \$r
        echo "FWCFG-END \$f"
    else
        echo "FWCFG-MISSING \$f"
    fi
done
poweroff -f
INIT
chmod 755 "$ST/init"
(cd "$ST" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$WORK/initramfs.cpio"

# 3. Boot once per memory size and decode.
TSCKHZ=$(awk '/^cpu MHz/{printf "%d", $4*1000; exit}' /proc/cpuinfo)
boot() { # boot MEM LOG
    timeout 120 "$QEMU" -M microvm,accel=tcg -bios "$QBOOT" -m "$1" \
        -nodefaults -no-user-config -display none -no-reboot -serial stdio \
        -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio" \
        -append "console=ttyS0 tsc_early_khz=$TSCKHZ panic=-1" | tr -d '\r' > "$2"
}
extract() { # extract LOG NAME DEST
    sed -n "/^FWCFG-BEGIN $(printf '%s' "$2" | sed 's,/,\\/,g')\$/,/^FWCFG-END /p" "$1" \
        | sed '1d;$d' | base64 -d > "$3"
    [ -s "$3" ] || { echo "no $2 in $1" >&2; exit 1; }
}
boot 512M "$WORK/boot-512M.log"
for f in $FILES; do extract "$WORK/boot-512M.log" "$f" "$OUT/$(echo "$f" | tr / _)"; done
boot 4G "$WORK/boot-4G.log"
extract "$WORK/boot-4G.log" etc/e820 "$OUT/etc_e820-4G"
"$QEMU" --version | head -n1 > "$OUT/qemu-version.txt"
ls -l "$OUT"
