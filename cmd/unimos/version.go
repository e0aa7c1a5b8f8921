package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/unimos/unimos/tensor"
)

func runVersion(ctx *context, args []string) error {
	fs := newFlags(ctx, "version", "", "Prints the unimos version, the Go version and the matrix-multiply backend in use\n(set UNIMOS_BLAS=go|openblas to force one).")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	version := "(devel)"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		version = info.Main.Version
	}
	fmt.Fprintf(ctx.stdout, "unimos %s %s %s/%s\nGEMM backend: %s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, tensor.Backend())
	return nil
}
