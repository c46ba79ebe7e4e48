#!/usr/bin/env bash
# Installs what clif-diff's tests need on a fresh Debian machine: the host C toolchain, the
# cross compilers and qemu-user for foreign-ISA runs. Idempotent: does nothing when all present.
set -euo pipefail

need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
for arch in aarch64 riscv64 s390x; do
  command -v "$arch-linux-gnu-gcc" >/dev/null || need+=("gcc-$arch-linux-gnu" "libc6-dev-${arch/aarch64/arm64}-cross")
  command -v "qemu-$arch" >/dev/null || need+=(qemu-user)
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
# Deduplicate (qemu-user may be listed three times).
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "setup: installing ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
