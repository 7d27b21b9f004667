#!/usr/bin/env bash
# Downloads the kernels of the VM matrix test (internal/vm's TestMatrix):
# Debian packages from more suites than this machine's own sources have,
# read through a sources list of their own so that the machine's apt
# configuration and state stay untouched (all of it lives under
# /var/cache/nscheck/apt). Each kernel has a slot directory under
# /var/cache/nscheck/kernels/matrix holding its image package and, for the
# split packaging of sid, its modules package; a slot is downloaded again
# only when the archive has a newer version, and then the older files of
# that slot go. The 6.1 and 6.12 cloud kernels that .ci/run keeps in
# /var/cache/nscheck/kernels are matrix kernels too and are not touched here.
set -euo pipefail

cache=${NSCHECK_KERNEL_CACHE:-/var/cache/nscheck/kernels}/matrix
state=/var/cache/nscheck/apt
mkdir -p "$cache" "$state/lists/partial" "$state/cache/archives/partial"
cat >"$state/sources.list" <<'LIST'
deb [arch=amd64,arm64] http://deb.debian.org/debian bullseye main
deb [arch=amd64,arm64] http://deb.debian.org/debian trixie main
deb [arch=amd64,arm64] http://deb.debian.org/debian sid main
LIST
apt=(-o "Dir::Etc::sourcelist=$state/sources.list" -o Dir::Etc::sourceparts=-
	-o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
	-o APT::Architectures::=amd64 -o APT::Architectures::=arm64
	-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
	-o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
	-o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
	-o Acquire::Languages=none -o APT::Get::List-Cleanup=false -o APT::Sandbox::User=root)
apt-get "${apt[@]}" update -qq

# slot  arch  the image package (an extended regex; the newest match wins)
slots='
amd64-5.10-cloud amd64 ^linux-image-5\.10\.[0-9.+a-z-]*-cloud-amd64-unsigned$
amd64-newest-cloud amd64 ^linux-binary-[0-9][0-9.+a-z-]*-cloud-amd64$
amd64-newest-rt amd64 ^linux-binary-[0-9][0-9.+a-z-]*-rt-amd64$
arm64-6.12-cloud arm64 ^linux-image-6\.12\.[0-9.+a-z-]*-cloud-arm64-unsigned$
'
while read -r slot arch re; do
	[ -n "$slot" ] || continue
	pkg=$(apt-cache "${apt[@]}" search --names-only "$re" | awk '{print $1}' | sed 's/:.*//' | sort -uV | tail -n 1)
	[ -n "$pkg" ] || { echo "kernels: no package matches $re" >&2; exit 1; }
	pkgs=("$pkg")
	# sid splits a kernel: linux-binary-<release> has the image,
	# linux-modules-<release> the modules.
	case $pkg in linux-binary-*) pkgs+=("linux-modules-${pkg#linux-binary-}") ;; esac
	dir="$cache/$slot"
	mkdir -p "$dir"
	want=()
	for p in "${pkgs[@]}"; do
		ver=$(apt-cache "${apt[@]}" policy "$p:$arch" | awk '/Candidate:/ {print $2}')
		if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
			echo "kernels: no candidate for $p:$arch" >&2
			exit 1
		fi
		f="${p}_${ver//:/%3a}_${arch}.deb"
		want+=("$f")
		if [ ! -s "$dir/$f" ]; then
			(cd "$dir" && apt-get "${apt[@]}" download -qq "$p:$arch=$ver")
			[ -s "$dir/$f" ] || { echo "kernels: apt-get download $p:$arch did not give $f" >&2; exit 1; }
		fi
	done
	for f in "$dir"/*; do
		keep=
		for w in "${want[@]}"; do [ "$f" = "$dir/$w" ] && keep=1; done
		[ -n "$keep" ] || rm -f -- "$f"
	done
	echo "kernel for the matrix: $slot: ${want[*]}"
done <<<"$slots"
