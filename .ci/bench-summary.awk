# Summarises `go test -bench` output of internal/bench: the spawn cost per
# namespace type against `unshare` for the same flags, measured in the same
# benchmark, interleaved (target <= 1.5x; the ratio is the median of each
# count's own ratio), the
# catalog wall time by default, serial and with --procs 2 (target <= 1.0 s
# by default), go install's binary at a release against make build's in the
# same benchmark (target <= 1.1x, the median of each count's ratio; between
# releases for information), and peak RSS
# (target <= 64 MiB), and `nscheck vm` per kernel (target <= 10 s for an
# x86_64 kernel under TCG; arm64 has none).
# Several -count runs give the median.
function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 2; i <= NF; i++) {
		if ($i == "ns/op") ns[name] = ns[name] " " $(i - 1)
		if ($i == "spawn-ms") spawn[name] = spawn[name] " " $(i - 1)
		if ($i == "unshare-ms") floor[name] = floor[name] " " $(i - 1)
		if ($i == "x-unshare") ratio[name] = ratio[name] " " $(i - 1)
		if ($i == "peak-RSS-MiB") rss[name] = rss[name] " " $(i - 1)
		if ($i == "s/kernel") vm[name] = vm[name] " " $(i - 1)
		if ($i == "install-release-s") instrel = instrel " " $(i - 1)
		if ($i == "install-s") inst = inst " " $(i - 1)
		if ($i == "make-s") mk = mk " " $(i - 1)
		if ($i == "release-x-make") relxmake = relxmake " " $(i - 1)
		if ($i == "x-make") xmake = xmake " " $(i - 1)
	}
}
END {
	printf "%-8s %12s %12s %7s\n", "type", "spawn ms", "unshare ms", "ratio"
	split("mnt uts ipc pid net user cgroup time", types, " ")
	bad = 0
	for (k = 1; k <= 8; k++) {
		t = types[k]; s = "BenchmarkSpawn/" t
		if (!(s in ratio)) continue
		r = median(ratio[s])
		printf "%-8s %12.2f %12.2f %6.2fx%s\n", t, median(spawn[s]), median(floor[s]), r, (r > 1.5 ? "  over target 1.5x" : "")
	}
	split("default 1 2", procs, " ")
	for (k = 1; k <= 3; k++) {
		p = procs[k]; c = "BenchmarkCatalog/procs=" p
		if (!(c in ns)) continue
		wall[p] = median(ns[c]) / 1e9
		label = p == "default" ? "nscheck run (default --procs)" : "nscheck run --procs " p
		printf "%-30s %.3f s wall%s, peak RSS %.1f MiB (target 64)\n", label ":", wall[p], (p == "default" ? " (target 1.0 s)" : ""), median(rss[c])
	}
	if (relxmake != "") {
		r = median(relxmake)
		printf "go install's nscheck at a release vs make build's, whole catalog: %.3f s vs %.3f s, %.2fx (target <= 1.10x)%s\n", median(instrel), median(mk), r, (r > 1.1 ? "  over target" : "")
	}
	if (xmake != "") printf "go install's nscheck between releases (pseudo-version) vs make build's: %.3f s vs %.3f s, %.2fx\n", median(inst), median(mk), median(xmake)
	if (wall["1"] > 0 && wall["2"] > 0) printf "parallel speed-up --procs 2 over --procs 1: %.2fx (target > 1)\n", wall["1"] / wall["2"]
	for (v in vm) {
		k = v; sub(/^BenchmarkVM\/kernel=/, "", k)
		t = k ~ /^arm64/ ? "" : (median(vm[v]) > 10 ? "; OVER target 10 s under TCG" : "; target 10 s under TCG")
		printf "nscheck vm, kernel %-20s %.1f s boot + catalog + power-off (median of%s%s)\n", k ":", median(vm[v]), vm[v], t
	}
}
