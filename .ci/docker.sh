#!/usr/bin/env bash
# Docker for the environment zoo (internal/zoo): Debian's docker.io, run as a
# private daemon that leaves the host as it found it.
#
#   .ci/docker.sh install   apt-get install docker.io (the service is not started)
#   .ci/docker.sh start     start dockerd; prints the DOCKER_HOST to use
#   .ci/docker.sh stop      stop it by its pid and remove what it made
#
# The daemon runs in a mount namespace of its own (unshare --mount, private
# propagation): its overlay, netns and volume mounts never appear in the
# host's mount table and vanish with it, and its files in /run and
# /etc/docker go to a tmpfs and to $root. --bridge=none and --iptables=false
# keep it from making docker0 or touching the firewall; its containers get
# --network none or the host's. Its state is under $root (data root, exec
# root, socket, pidfile, log), its containers' cgroups under one parent that
# stop removes. containerd is the one dockerd starts and stops itself.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

root=${NSCHECK_DOCKER_ROOT:-/var/cache/nscheck/docker}
run=$root/run
pidfile=$run/dockerd.pid
sock=$run/docker.sock
cgparent=nscheck-zoo
dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)
# Debian's client first: another docker on $PATH may be something else
docker=$(command -v /usr/bin/docker || command -v docker || true)

cgroup_dirs() {
	# the parent cgroup of the containers, in every hierarchy (v1 or v2)
	local d
	for d in /sys/fs/cgroup/"$cgparent" /sys/fs/cgroup/*/"$cgparent"; do
		[ -d "$d" ] && echo "$d"
	done
	return 0
}

case "${1:-}" in
install)
	if [ -x "$dockerd" ] && [ -n "$docker" ]; then
		exit 0
	fi
	apt-get update -qq
	# policy-rc.d (or no init system) keeps the package from starting a daemon
	apt-get install -y -qq --no-install-recommends docker.io
	;;
start)
	[ -x "$dockerd" ] || { echo "docker.sh: $dockerd missing: run .ci/docker.sh install" >&2; exit 1; }
	if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		echo "unix://$sock"
		exit 0
	fi
	mkdir -p "$root/data" "$run/exec" "$root/etc"
	# setsid: the daemon outlives this script; stop ends it by its pid.
	# In its mount namespace a tmpfs covers /run (containerd's shim
	# sockets, docker's plugin dir) and /etc/docker is $root/etc (its
	# key.json): nothing of it is left on the host's file systems either.
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid unshare --mount --propagation private sh -c '
		mount -t tmpfs -o mode=0755 nscheck-docker-run /run &&
		{ [ ! -d /etc/docker ] || mount --bind "$0/etc" /etc/docker; } &&
		exec "$@"' "$root" \
		"$dockerd" --data-root "$root/data" --exec-root "$run/exec" \
		--pidfile "$pidfile" --host "unix://$sock" \
		--iptables=false --ip6tables=false --ip-masq=false --bridge=none \
		--cgroup-parent "/$cgparent" --userland-proxy=false \
		--containerd-namespace nscheck-zoo --containerd-plugins-namespace nscheck-zoo-plugins \
		>"$root/dockerd.log" 2>&1 </dev/null &
	for _ in $(seq 1 150); do
		if [ -S "$sock" ] && "$docker" -H "unix://$sock" version >/dev/null 2>&1; then
			echo "unix://$sock"
			exit 0
		fi
		sleep 0.2
	done
	echo "docker.sh: dockerd did not answer on $sock within 30s; its log:" >&2
	tail -n 30 "$root/dockerd.log" >&2
	"$0" stop || true
	exit 1
	;;
stop)
	if [ -S "$sock" ] && [ -s "$pidfile" ]; then
		ids=$("$docker" -H "unix://$sock" ps -aq 2>/dev/null || true)
		# shellcheck disable=SC2086 # one argument per id
		[ -z "$ids" ] || "$docker" -H "unix://$sock" rm -f $ids >/dev/null 2>&1 || true
	fi
	if [ -s "$pidfile" ]; then
		pid=$(cat "$pidfile")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			for _ in $(seq 1 100); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.2
			done
			if kill -0 "$pid" 2>/dev/null; then
				echo "docker.sh: dockerd $pid did not stop on SIGTERM: SIGKILL" >&2
				kill -KILL "$pid" || true
			fi
		fi
		rm -f "$pidfile"
	fi
	rm -f "$sock"
	for d in $(cgroup_dirs); do
		rmdir "$d" 2>/dev/null || echo "docker.sh: cannot remove cgroup $d (still in use?)" >&2
	done
	;;
*)
	echo "usage: $0 install|start|stop" >&2
	exit 2
	;;
esac
