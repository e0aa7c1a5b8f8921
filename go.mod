module github.com/unimos/unimos

go 1.26.8

require (
	github.com/ebitengine/purego v0.11.3
	golang.org/x/sys v0.50.0
)

require (
	golang.org/x/image v0.48.0 // indirect
	golang.org/x/term v0.48.0 // indirect
)
