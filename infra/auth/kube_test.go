package auth

import (
	"bytes"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKubeClientTrustsTheClusterCAAndShowsTheRotatedServiceAccountToken(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"https://issuer.example", "https://kubernetes.example"} {
		if _, ok := kubeClient(u, dir); ok {
			t.Errorf("%s is not the API server, yet got the kube client", u)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, ok := kubeClient("https://kubernetes.default.svc.cluster.local", dir)
	if !ok {
		t.Fatal("no kube client inside a pod")
	}
	for _, tok := range []string{"first", "second"} {
		if err := os.WriteFile(filepath.Join(dir, "token"), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(srv.URL) // the cluster CA signed this server's certificate
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != "Bearer first" || got[1] != "Bearer second" {
		t.Errorf("the server saw %q, want the token as it was at each request", got)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the token was sent over plain HTTP")
	}))
	defer plain.Close()
	if _, err := c.Get(plain.URL); err == nil {
		t.Error("a plain-HTTP request went through")
	}
}

func TestOIDCDiscoveryIsRetriedAfterTheInterval(t *testing.T) {
	old := retryDiscovery
	retryDiscovery = 10 * time.Millisecond
	defer func() { retryDiscovery = old }()
	var up atomic.Bool
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"` + srv.URL + `","jwks_uri":"` + srv.URL + `/keys"}`))
	}))
	defer srv.Close()
	v, err := newOIDCVerifier(OIDCOptions{Issuer: srv.URL, Audience: "a"}, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.get(t.Context()); err == nil {
		t.Fatal("discovery worked against a server that is down")
	}
	up.Store(true)
	time.Sleep(20 * time.Millisecond)
	if _, err := v.get(t.Context()); err != nil {
		t.Fatalf("discovery not retried after the interval: %v", err)
	}
}
