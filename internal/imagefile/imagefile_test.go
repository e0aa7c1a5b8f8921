package imagefile

import "testing"

func TestIs(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"a.jpg", true},
		{"dir/B.JPEG", true},
		{"x.webp", true},
		{"scan.TIFF", true},
		{"features.npy", false},
		{"jpg", false},
		{"notes.txt", false},
		{"anim.gif", true},
		{"f.ppm", false},
		{"h.jpg.txt", false},
		{"", false},
	} {
		if got := Is(c.name); got != c.want {
			t.Errorf("Is(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
