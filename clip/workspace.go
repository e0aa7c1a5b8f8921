package clip

import (
	"sync"

	"github.com/unimos/unimos/tensor"
)

// featureMap is a batch of convolutional feature maps, channel-major so that
// a convolution over the whole batch is one matrix product: m is
// [C, B·H·W], row c holding channel c of every image, each image's H×W
// plane row-major.
//
// The maps of a ResNet pass come from a workspace and go back to it once no
// layer reads them any more: each layer function consumes its input (the
// last read of it, whose storage the workspace then hands to a later
// layer), and a map that two layers read is shared first (workspace.share).
type featureMap struct {
	m             *tensor.Matrix
	batch, height int
	width         int
	// readers counts the layers yet to consume m; nil for a map that is
	// not the workspace's (built by a test), which consuming leaves alone.
	readers *int
}

// plane returns channel c of image b, [H·W].
func (f featureMap) plane(c, b int) []float32 {
	hw := f.height * f.width
	return f.m.Row(c)[b*hw : (b+1)*hw]
}

// workspace recycles the buffers of a convolutional forward pass: feature
// maps that the layers have consumed hold later layers' outputs, and the
// im2col columns and Winograd tiles live from call to call. A ResNet pass
// would otherwise allocate (and the runtime zero) its activations afresh
// at every layer, half a gigabyte for RN50 at batch 8.
type workspace struct {
	free [][]float32 // the storage of consumed feature maps
	cols []float32   // im2col columns
	// winogradV and winogradM hold one chunk of transformed input tiles
	// and their products (applyWinograd).
	winogradV, winogradM []float32
}

// workspaces keeps the buffers of finished passes for the next, so that
// encoding batch after batch allocates nothing large.
var workspaces = sync.Pool{New: func() any { return new(workspace) }}

// featureMap returns a map of the given shape, with one reader to come and
// undefined contents, reusing the smallest free buffer that holds it.
func (w *workspace) featureMap(channels, batch, height, width int) featureMap {
	n := channels * batch * height * width
	best := -1
	for i, b := range w.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(w.free[best])) {
			best = i
		}
	}
	var data []float32
	if best >= 0 {
		data = w.free[best][:n]
		w.free = append(w.free[:best], w.free[best+1:]...)
	} else {
		data = make([]float32, n)
	}
	readers := 1
	return featureMap{m: tensor.FromSlice(channels, batch*height*width, data), batch: batch, height: height, width: width,
		readers: &readers}
}

// share returns f with one more reader to come: f is consumed twice before
// its storage is reused.
func (w *workspace) share(f featureMap) featureMap {
	if f.readers != nil {
		*f.readers++
	}
	return f
}

// release consumes f: after its last reader, f's storage goes back for
// reuse, and f must not be used afterwards.
func (w *workspace) release(f featureMap) {
	if f.readers == nil {
		return
	}
	if *f.readers <= 0 {
		panic("clip: a feature map consumed more often than it was shared")
	}
	if *f.readers--; *f.readers == 0 {
		w.free = append(w.free, f.m.Data)
	}
}

// columns returns the im2col buffer, grown to at least n floats.
func (w *workspace) columns(n int) []float32 {
	if cap(w.cols) < n {
		w.cols = make([]float32, n)
	}
	return w.cols[:n]
}

// images rearranges images, each [3, n, n], into a featureMap [3, B·n·n].
func (w *workspace) images(images [][]float32, n int) featureMap {
	hw := n * n
	f := w.featureMap(3, len(images), n, n)
	for b, img := range images {
		for c := range 3 {
			copy(f.plane(c, b), img[c*hw:(c+1)*hw])
		}
	}
	return f
}
