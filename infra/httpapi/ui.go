package httpapi

import (
	"embed"
	"mime"
	"net/http"
	"path"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/auth"
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
// chain run by itself (auto); authRequired whether to ask for a token; the
// order states and the stations (the kitchen rows of events.Pipeline), from
// which it draws one board per station.
func (s *Server) uiConfig(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, uiConfig{KitchenMode: s.KitchenMode, AuthRequired: s.Auth.Enabled(),
		Statuses: events.Statuses(), Stations: stations(), Cancellable: domain.Cancellable()})
	return nil
}

type uiConfig struct {
	KitchenMode  string    `json:"kitchenMode"`
	AuthRequired bool      `json:"authRequired"`
	Statuses     []string  `json:"statuses"`
	Stations     []station `json:"stations"`
	Cancellable  []string  `json:"cancellable"` // the states a customer may cancel in
}

// me tells the caller its roles (all of them with authentication off), so
// the UI offers only what it may do (the order page's Cancel button).
func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string][]string{"roles": p.Roles.Names()})
	return nil
}

// station is a kitchen step as the UI draws it: the board of Name shows
// the orders in state Queue; its button posts to /api/v1/order/<Route>,
// which makes them Records; Inform is the notification that brings it work.
type station struct {
	Name    string `json:"name"`
	Queue   string `json:"queue"`
	Records string `json:"records"`
	Route   string `json:"route"`
	Inform  string `json:"inform"`
}

func stations() []station {
	var out []station
	for _, st := range events.Kitchen() {
		queue := events.StatusApproved
		if n := len(out); n > 0 {
			queue = out[n-1].Records
		}
		out = append(out, station{Name: st.Station, Queue: queue, Records: st.Records, Route: st.Route, Inform: st.Inform})
	}
	return out
}
