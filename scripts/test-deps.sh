#!/usr/bin/env bash
# Installs what the full test suite needs on a fresh Debian machine: the
# netfilter user tools, trafgen (netsniff-ng) as an independent SYN generator,
# qemu for the kernel parity harness, chromium for the browser tests,
# systemd for `systemd-analyze verify` of the unit, adduser for the .deb and
# bird2 as the router of the fleet lab (TestFleetBGP).
# Run as root; as another user it only reports what is missing.
set -euo pipefail

pkgs=(nftables netsniff-ng qemu-system-x86 chromium iproute2 curl cpio zstd xz-utils kmod ca-certificates nodejs systemd adduser bird2)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "test-deps: not root, cannot install: ${missing[*]} (tests that need them will skip and say why)" >&2
	exit 0
fi
echo "test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
