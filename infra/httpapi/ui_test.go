package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
