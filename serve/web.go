package serve

import (
	"embed"
	"net/http"
)

// webFiles is the web page: HTML, CSS and script, built into the binary so
// that the page works without the repository and fetches nothing from
// elsewhere.
//
//go:embed web/index.html web/app.js web/style.css
var webFiles embed.FS

// contentSecurityPolicy lets the page load only its own files and the
// images the user chooses (blob: URLs), and talk only to this server.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// webRoutes maps the page's paths to handlers serving its files.
func webRoutes() map[string]http.HandlerFunc {
	file := func(name, contentType string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			data, err := webFiles.ReadFile(name)
			if err != nil { // cannot happen: the files are embedded
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			}
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(data)
		}
	}
	return map[string]http.HandlerFunc{
		"/":          file("web/index.html", "text/html; charset=utf-8"),
		"/app.js":    file("web/app.js", "text/javascript; charset=utf-8"),
		"/style.css": file("web/style.css", "text/css; charset=utf-8"),
	}
}
