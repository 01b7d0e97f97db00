// Package packaging holds how synproxy-lite is installed, and the tests
// that keep it working: the systemd unit (synproxy-lite.service, which
// `systemd-analyze verify` must accept), the Debian package's description
// for goreleaser's nfpm (nfpm.yaml, built by `make package`) and its
// maintainer scripts (deb/). The package has no code; its tests build the
// .deb and install it with dpkg, and TestGuide runs the shell blocks of
// docs/guide.md ("Protect port 443 on one server") in a network-namespace
// lab, with the installed package, so the guide cannot rot.
package packaging
