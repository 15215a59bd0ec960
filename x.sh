#!/usr/bin/env bash
# One entry point that sets up a fresh Debian 12 machine (as root) and runs a task.
#
#   ./x.sh demo     build fw.rom, rinit and mvm, then: mvm run --timings -- uname -a
#   ./x.sh test     everything CI runs: lint, unit tests, boot tests under QEMU
#   ./x.sh bench    firmware benchmark: fw.rom vs qboot vs SeaBIOS
#   ./x.sh setup    only install what the tasks need
#
# Installs (idempotent): Debian packages (QEMU, lz4, cpio, ...), the Rust toolchain
# pinned by rust-toolchain.toml with its targets and components, and the Rust virtiofsd.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(qemu-system-x86 qemu-utils lz4 cpio busybox-static e2fsprogs kmod binutils ca-certificates
          libseccomp-dev libcap-ng-dev pkg-config)

# The Rust virtiofsd for `mvm run --root DIR` and `-v` (Debian 12 ships only QEMU's older C
# daemon): built with cargo into /usr/local (as root) or ~/.cache/mvm/tools, once.
VIRTIOFSD_VERSION=1.14.0

install_virtiofsd() {
    local root=/usr/local
    [ "$(id -u)" = 0 ] || root="$HOME/.cache/mvm/tools"
    [ -x "$root/bin/virtiofsd" ] && return
    echo "+ cargo install virtiofsd@$VIRTIOFSD_VERSION --locked --root $root" >&2
    cargo install virtiofsd --version "$VIRTIOFSD_VERSION" --locked --root "$root" >&2
}

setup() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        echo "+ apt-get install ${missing[*]}" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
    fi
    if ! command -v rustup >/dev/null 2>&1; then
        echo "x.sh: rustup is required (https://rustup.rs)" >&2
        exit 1
    fi
    # Reads rust-toolchain.toml: the pinned toolchain, its targets and components.
    rustup toolchain install >&2
    install_virtiofsd
}

task=${1:-}
shift || true
case "$task" in
    setup) setup ;;
    demo|test|bench)
        setup
        [ "$task" = bench ] && task=bench-fw
        exec cargo xtask "$task" "$@"
        ;;
    *)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
