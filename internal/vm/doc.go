// Package vm boots other kernels under QEMU with nscheck as their init and
// brings back the report the guest's catalog wrote: what `nscheck vm` does
// (the command only parses flags into a Plan and calls Run). It owns the
// whole boot policy: which accelerator (KVM only where it is real, TCG
// otherwise, and a fallback from one to the other), which firmware and
// entry point (qboot and the PVH entry on x86, QEMU's own loader on arm64),
// the kernel intake (OpenKernel reads a bare image, a directory in either
// layout, or a .deb, .rpm or Arch package with its modules packages), the
// initramfs, the report channel and its framing, the deadlines, and the
// report of a boot that gave none.
//
// One kernel, host and guest side by side (internal/guest is the guest):
//
//	host (Run, Boot)                         guest (internal/guest, PID 1)
//	────────────────                         ─────────────────────────────
//	OpenKernel: image + modules of its
//	  release (and their dependencies),
//	  uncompressed
//	Initramfs: /init = static nscheck,
//	  + /modules/*.ko
//	listen on report.sock
//	start QEMU ─ -kernel -initrd -append ──▶  kernel boots, runs /init
//	  console (ttyS0 / ttyAMA0) ◀── stdio ─  kernel and init messages
//	                                         mount devtmpfs, proc, sysfs, ...
//	                                         (arm64: load modules first)
//	accept ◀────── report channel ─────────  open ttyS1 / virtio port
//	  Hello frame: "init answered" ◀───────  Hello(release)
//	  (HelloTimeout ends a KVM try early)    load modules, loopback up
//	                                         start the runner (nscheck again,
//	                                           not PID 1): the whole catalog
//	                                         reap orphans until it exits
//	  gunzip, decode the JSON ◀────────────  Report(gzipped JSON) (or ErrorFrame)
//	  wait for power-off (≤ 10 s),           drain the UART, power off
//	  else kill QEMU; reap it always
//	write DIR/<release>.json
//
// A frame is length- and checksum-framed (frame.go): the console is
// never trusted for data, since kernel messages interleave with it. QEMU
// exits 0 after a panic or when the kernel does not fit, so only a valid
// Report frame is success; everything else (a panic line on the console, a
// hang past Timeout, QEMU's exit status, a guest ErrorFrame) becomes a
// BootError, and Run writes it as the kernel's report with a report-level
// error and the console's last lines.
package vm
