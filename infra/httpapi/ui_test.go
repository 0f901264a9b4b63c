package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/events"
)

func TestUIServesThePageAndItsFiles(t *testing.T) {
	k := startKitchen(t, "manual")
	tests := []struct {
		path, status, contentType, contains string
	}{
		{"/", "200 OK", "text/html; charset=utf-8", `<script src="/ui/app.js"`},
		{"/ui/app.js", "200 OK", "text/javascript; charset=utf-8", "fetch('/api/v1/notifications'"},
		{"/ui/app.css", "200 OK", "text/css; charset=utf-8", ".board"},
		{"/ui/index.html", "200 OK", "text/html; charset=utf-8", "<title>"},
		{"/ui/missing.js", "404 Not Found", "application/json", `"error":"no UI file \"missing.js\""`},
		{"/ui/..%2fui.go", "404 Not Found", "application/json", `"error"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, err := k.srv.Client().Get(k.srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.Status != tt.status || res.Header.Get("Content-Type") != tt.contentType || !strings.Contains(string(body), tt.contains) {
				t.Fatalf("GET %s: %s %s, body %.200q", tt.path, res.Status, res.Header.Get("Content-Type"), body)
			}
		})
	}
}

func TestConfigTellsTheKitchenMode(t *testing.T) {
	for _, mode := range []string{"auto", "manual"} {
		t.Run(mode, func(t *testing.T) {
			k := startKitchen(t, mode)
			res, err := k.srv.Client().Get(k.srv.URL + "/api/v1/config")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var got map[string]any
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("%d %v %v", res.StatusCode, got, err)
			}
			if got["kitchenMode"] != mode {
				t.Fatalf("kitchenMode = %q, want %q", got["kitchenMode"], mode)
			}
			if got["authRequired"] != false {
				t.Fatalf("authRequired = %v without tokens, want false", got["authRequired"])
			}
		})
	}
}

// The UI draws its boards from the config: every kitchen row of the
// pipeline, in order, each queue the state the step before it records.
func TestConfigDescribesEveryStationOfThePipeline(t *testing.T) {
	k := startKitchen(t, "manual")
	res, err := k.srv.Client().Get(k.srv.URL + "/api/v1/config")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct {
		Statuses []string `json:"statuses"`
		Stations []struct {
			Name, Queue, Records, Route, Inform string
		} `json:"stations"`
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Statuses, events.Statuses()) {
		t.Errorf("statuses %v, want %v", got.Statuses, events.Statuses())
	}
	kitchen := events.Kitchen()
	if len(got.Stations) != len(kitchen) {
		t.Fatalf("%d stations, want %d: %+v", len(got.Stations), len(kitchen), got.Stations)
	}
	queue := events.StatusApproved
	for i, s := range kitchen {
		g := got.Stations[i]
		if g.Name != s.Station || g.Queue != queue || g.Records != s.Records || g.Route != s.Route || g.Inform != s.Inform {
			t.Errorf("station %d = %+v, want %s waiting on %s, recording %s on %s, told by %s", i, g, s.Station, queue, s.Records, s.Route, s.Inform)
		}
		queue = s.Records
	}
}
