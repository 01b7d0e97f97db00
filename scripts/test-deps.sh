#!/usr/bin/env bash
# Installs what the full test suite needs on a fresh Debian machine: the
# netfilter user tools, trafgen (netsniff-ng) as an independent SYN generator,
# qemu for the kernel parity harness, chromium for the browser tests,
# systemd for `systemd-analyze verify` of the unit, adduser for the .deb,
# libcap2-bin for the capsh of the guide's capability check,
# zsh and fish to check the completion scripts, promtool (Debian's
# prometheus: about 20 MB, installs in seconds) to check the alert rules,
# clang 14 with libbpf's headers to rebuild the XDP programs, and bird2
# as the router of the fleet lab (TestFleetBGP).
# Run as root; as another user it only reports what is missing.
set -euo pipefail

pkgs=(
	nftables netsniff-ng iproute2 curl kmod ca-certificates
	qemu-system-x86 cpio zstd xz-utils # kernel parity harness
	chromium nodejs                     # browser and wasm tests
	systemd adduser                     # unit verification, the .deb
	libcap2-bin                         # capsh, run by docs/guide.md's blocks
	zsh fish                            # completion scripts
	prometheus                          # promtool check rules
	clang-14 llvm-14 libbpf-dev         # XDP programs rebuilt and compared
	bird2                               # the fleet lab's router
)

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
