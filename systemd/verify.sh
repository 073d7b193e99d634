#!/bin/sh
# systemd/verify.sh: verify the units exactly as shipped, as CI does.
#
#   systemd/verify.sh            # verify; the binary must already be installed
#   systemd/verify.sh --install  # first build and install the daemon at the
#                                # unit's ExecStart path (root; CI does this)
#
# `systemd-analyze verify` checks that ExecStart's binary exists, so the
# daemon is installed at /usr/local/bin/build-service first. verify exits 0
# on warnings (an unknown or unparsable directive, silently ignored by
# systemd), so any output is a failure here. Then prints the exposure from
# `systemd-analyze security --offline=true` (the README records it; the Go
# test in this directory fails if it rises).
set -eu
cd "$(dirname "$0")/.."
bin=/usr/local/bin/build-service

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "verify.sh: systemd-analyze not found (apt-get install systemd)" >&2
	exit 1
fi
if [ "${1:-}" = "--install" ]; then
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	CGO_ENABLED=0 go build -o "$tmp" ./cmd/build-service
	install -D -m 0755 "$tmp" "$bin"
	echo "installed $bin"
fi
if [ ! -x "$bin" ]; then
	echo "verify.sh: $bin is not installed; run with --install (as root)" >&2
	exit 1
fi

out=$(systemd-analyze verify systemd/build-service.socket systemd/build-service.service 2>&1) || {
	printf '%s\n' "$out" >&2
	echo "verify.sh: systemd-analyze verify failed" >&2
	exit 1
}
if [ -n "$out" ]; then
	printf '%s\n' "$out" >&2
	echo "verify.sh: systemd-analyze verify printed warnings" >&2
	exit 1
fi
echo "systemd-analyze verify: build-service.socket build-service.service OK"
systemd-analyze security --offline=true --no-pager systemd/build-service.service | tail -n 1
