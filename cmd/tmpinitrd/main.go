package main

import (
	"os"

	"github.com/nscheck/nscheck/internal/vm"
)

func main() {
	k, err := vm.OpenKernel(os.Args[2], "/tmp")
	if err != nil {
		panic(err)
	}
	ir, err := vm.NewInitramfs(os.Args[1])
	if err != nil {
		panic(err)
	}
	if err := ir.WriteFor(os.Args[3], k); err != nil {
		panic(err)
	}
	println(k.Image, k.Release)
}
