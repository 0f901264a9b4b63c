package httpapi

import (
	"embed"
	"net/http"
)

//go:embed ui/index.html
var uiFiles embed.FS

// ui serves the web UI: one page, no build step.
func (s *Server) ui(w http.ResponseWriter, r *http.Request) error {
	page, err := uiFiles.ReadFile("ui/index.html")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, err = w.Write(page)
	return err
}
