#!/bin/sh
# build-service-make-wrapper (this marker lets copies of the wrapper recognise
# each other, so a fallback never runs a wrapper again)
#
# Installed as `make` in containers: runs make on the host through
# build-service, as the calling user, in the current directory, and exits
# with the build's code (see build-cli's exit-code table).
#
#   BUILD_CLI=/path/to/build-cli   build-cli to use (default: build-cli on PATH)
#   BUILD_SERVICE_FALLBACK=1       when the service is unreachable (build-cli
#                                  exits 125), run a real make found on PATH
#                                  instead. Never after a denial (126) or any
#                                  other code. Off by default: a build that
#                                  silently runs without the host's libraries
#                                  is rarely what anyone wants.
#
# Every argument is passed on exactly ("$@"): spaces, quotes, globs and empty
# arguments survive.

marker=build-service-make-wrapper

# Set just before the fallback execs a real make (exec keeps the pid): if we
# are that process, what was found was a wrapper after all. Stop, not loop.
if [ "${BUILD_SERVICE_WRAPPER_PID:-}" = "$$" ]; then
	echo "make: the fallback make $0 is a build-service wrapper; not running it again" >&2
	exit 125
fi

# is_wrapper FILE: FILE is a script carrying the marker on its second line.
# Only shell builtins: PATH may hold nothing but this wrapper and build-cli.
is_wrapper() {
	l1='' l2=''
	{ IFS= read -r l1 && IFS= read -r l2; } <"$1" 2>/dev/null
	case $l1 in '#!'*) ;; *) return 1 ;; esac
	case $l2 in *"$marker"*) return 0 ;; esac
	return 1
}

cli=${BUILD_CLI:-}
if [ -z "$cli" ]; then
	cli=$(command -v build-cli 2>/dev/null) || cli=
fi

if [ "${BUILD_SERVICE_FALLBACK:-}" != 1 ]; then
	if [ -z "$cli" ] || [ ! -x "$cli" ]; then
		echo "make: build-cli not found (set BUILD_CLI or put build-cli on PATH)" >&2
		exit 125
	fi
	# exec: build-cli gets the signals directly and its exit code is ours;
	# it says itself when the service is unreachable.
	exec "$cli" make "$@"
fi

# Fallback mode: build-cli runs as a child so its code can be looked at.
# Ctrl-C reaches it through the terminal's process group; the shell only
# notes the signal (a trap with a command, unlike an ignore, is not
# inherited) so it does not fall back after an interrupted build.
caught=
trap 'caught=1' INT TERM HUP QUIT
if [ -n "$cli" ] && [ -x "$cli" ]; then
	"$cli" make "$@"
	status=$?
else
	echo "make: build-cli not found (set BUILD_CLI or put build-cli on PATH)" >&2
	status=125
fi
trap - INT TERM HUP QUIT
if [ "$status" -ne 125 ] || [ -n "$caught" ]; then
	exit "$status"
fi

# A real make: the first `make` on PATH that is neither this script (same
# file, compared by device and inode through -ef) nor any other copy of the
# wrapper (it carries the marker), so there is no exec loop; the pid check
# at the top catches anything that slips through. -ef is not in POSIX but
# dash, bash, ksh and busybox sh have it; where a shell lacks it, [ fails,
# and the marker check still recognises this very file.
real=
oldifs=$IFS
IFS=:
set -f # PATH entries are not glob patterns
for dir in $PATH; do
	[ -n "$dir" ] || dir=.
	cand=$dir/make
	# shellcheck disable=SC3013
	if [ -f "$cand" ] && [ -x "$cand" ] && ! [ "$cand" -ef "$0" ] && ! is_wrapper "$cand"; then
		real=$cand
		break
	fi
done
IFS=$oldifs
set +f

if [ -z "$real" ]; then
	echo "make: build-service unreachable and no other make on PATH to fall back to" >&2
	exit 125
fi
echo "make: build-service unreachable; running $real here instead (BUILD_SERVICE_FALLBACK=1)" >&2
BUILD_SERVICE_WRAPPER_PID=$$
export BUILD_SERVICE_WRAPPER_PID
exec "$real" "$@"
