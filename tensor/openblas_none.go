//go:build !(linux && (amd64 || arm64)) || noopenblas

package tensor

import (
	"errors"
	"runtime"
)

// loadOpenBLAS reports that this build has no OpenBLAS loader: it is built
// only for linux/amd64 and linux/arm64, and the noopenblas build tag leaves
// it out so that CGO_ENABLED=0 yields a fully static binary (the loader
// links the binary against the system's dynamic loader).
func loadOpenBLAS() (gemmBackend, error) {
	if runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
		return nil, errors.New("OpenBLAS support not built in (built with the noopenblas tag)")
	}
	return nil, errors.New("OpenBLAS support not built for " + runtime.GOOS + "/" + runtime.GOARCH)
}
