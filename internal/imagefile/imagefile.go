// Package imagefile tells image files by their names, as torchvision's
// ImageFolder does, so that every package that looks for images agrees on
// what one is.
package imagefile

import (
	"path/filepath"
	"slices"
	"strings"
)

// Extensions are the file extensions torchvision's ImageFolder takes for
// images, compared case-insensitively.
var Extensions = []string{".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}

// Is reports whether name has one of the image Extensions.
func Is(name string) bool {
	return slices.Contains(Extensions, strings.ToLower(filepath.Ext(name)))
}
