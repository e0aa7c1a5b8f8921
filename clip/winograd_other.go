//go:build !amd64

package clip

// btLanes leaves every element to bt on this architecture.
func btLanes(t, d *[winogradInput][]float32, n int) int { return 0 }

// atLanes leaves every element to at on this architecture.
func atLanes(y *[winogradTile][]float32, m *[winogradInput][]float32, n int) int { return 0 }
