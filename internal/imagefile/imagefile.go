// Package imagefile tells image files by their names, so that every command
// that looks for images in folders (extract, predict, and the hint of a
// store that is not one) takes the same files.
package imagefile

import (
	"path/filepath"
	"slices"
	"strings"
)

// Extensions are the file name extensions, in lower case, of the formats
// clip.LoadImage decodes (the decoders it registers; its tests decode a
// file of each). Names are compared case-insensitively.
var Extensions = []string{".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}

// Is reports whether name ends in one of Extensions, in any case.
func Is(name string) bool {
	return slices.Contains(Extensions, strings.ToLower(filepath.Ext(name)))
}
