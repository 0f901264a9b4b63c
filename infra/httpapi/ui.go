package httpapi

import (
	"embed"
	"mime"
	"net/http"
	"path"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// uiFiles is the web UI: plain HTML, CSS and JavaScript, no build step.
//
//go:embed ui
var uiFiles embed.FS

// ui serves the page.
func (s *Server) ui(w http.ResponseWriter, _ *http.Request) error {
	return serveUIFile(w, "index.html")
}

// uiAsset serves the page's scripts and styles under /ui/.
func (s *Server) uiAsset(w http.ResponseWriter, r *http.Request) error {
	return serveUIFile(w, r.PathValue("name"))
}

func serveUIFile(w http.ResponseWriter, name string) error {
	body, err := uiFiles.ReadFile(path.Join("ui", path.Clean("/"+name)))
	if err != nil { // the files are compiled in: anything else is a bad name too
		return domain.Errorf(domain.KindNotFound, "no UI file %q", name)
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err = w.Write(body)
	return err
}

// uiConfig tells the UI what it needs to know about this process: the
// kitchen mode decides whether stations report steps (manual) or watch the
// chain run by itself (auto); authRequired whether to ask for a token.
func (s *Server) uiConfig(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"kitchenMode": s.KitchenMode, "authRequired": s.Auth.Enabled()})
	return nil
}
