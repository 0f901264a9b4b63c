package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/infra/auth"
	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
)

const (
	adminToken = "admin-token-for-httpapi-tests"
	shopToken  = "shop-token-for-httpapi-tests"
	staffToken = "staff-token-for-httpapi-tests"
)

func withTokens(t *testing.T) func(*httpapi.Server) {
	t.Helper()
	a, err := auth.New(auth.Options{Tokens: []auth.StaticToken{
		{Role: auth.Admin, Token: adminToken}, {Role: auth.Shop, Token: shopToken}, {Role: auth.Staff, Token: staffToken},
	}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return func(s *httpapi.Server) { s.Auth = a }
}

func (k *kitchen) do(t *testing.T, method, path, token string, header map[string]string, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, k.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for h, v := range header {
		req.Header.Set(h, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := k.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res, out
}

func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	k := startKitchen(t, "manual", withTokens(t))
	for _, path := range []string{"/", "/ui/app.js", "/api/v1/orders", "/health/liveness", "/no/such/route"} {
		res, _ := k.do(t, http.MethodGet, path, "", nil, "")
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q allows inline script", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") == "" {
			t.Errorf("GET %s: headers %v", path, h)
		}
	}
}

func TestTheUIHasNoInlineScriptOrStyle(t *testing.T) {
	k := startKitchen(t, "manual")
	res, err := k.srv.Client().Get(k.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	html := strings.ToLower(string(page))
	// Every <script> loads a file; no style blocks or attributes, no on* handlers.
	for _, tag := range strings.Split(html, "<script")[1:] {
		if !strings.HasPrefix(strings.TrimSpace(tag), "src=") || !strings.Contains(tag, "></script>") {
			t.Errorf("inline script: <script%.60s", tag)
		}
	}
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", " onsubmit=", " oninput=", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("the page holds %q, which the CSP blocks", bad)
		}
	}
}

func TestRoutesNeedATokenAndTheRightRoleAndARefusalWritesNothing(t *testing.T) {
	k := startKitchen(t, "manual", withTokens(t))
	jsonBody := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"open: health", http.MethodGet, "/health/readiness", "", "", http.StatusOK},
		{"open: UI config says auth is on", http.MethodGet, "/api/v1/config", "", "", http.StatusOK},
		{"read without token", http.MethodGet, "/api/v1/customers/alice", "", "", http.StatusUnauthorized},
		{"read with a wrong token", http.MethodGet, "/api/v1/customers/alice", "not-a-real-token-000000", "", http.StatusUnauthorized},
		{"read as staff", http.MethodGet, "/api/v1/customers/alice", staffToken, "", http.StatusOK},
		{"customer by shop", http.MethodPost, "/api/v1/customers", shopToken, `{"customerId":"mallory","name":"M","creditLimit":100}`, http.StatusForbidden},
		{"credit by staff", http.MethodPut, "/api/v1/customers/alice/credit", staffToken, `{"creditLimit":99999999}`, http.StatusForbidden},
		{"order by staff", http.MethodPost, "/api/v1/order", staffToken, `{"customerId":"alice","items":[{"flavour":"lemon","size":"S","quantity":1}]}`, http.StatusForbidden},
		{"credit by admin", http.MethodPut, "/api/v1/customers/alice/credit", adminToken, `{"creditLimit":60000}`, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h map[string]string
			if tt.body != "" {
				h = jsonBody
			}
			res, body := k.do(t, tt.method, tt.path, tt.token, h, tt.body)
			if res.StatusCode != tt.want {
				t.Fatalf("%d %v, want %d", res.StatusCode, body, tt.want)
			}
			if tt.want >= 400 {
				if body["error"] == nil {
					t.Errorf("body %v has no error", body)
				}
				if tt.want == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Error("401 without a Bearer challenge")
				}
			}
		})
	}
	_, c := k.do(t, http.MethodGet, "/api/v1/customers/alice", adminToken, nil, "")
	if c["creditLimit"] != float64(60000) {
		t.Errorf("alice's limit is %v: only the admin's change should have counted", c["creditLimit"])
	}
	if res, _ := k.do(t, http.MethodGet, "/api/v1/customers/mallory", adminToken, nil, ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("the shop's refused customer exists: %d", res.StatusCode)
	}
	_, cfg := k.do(t, http.MethodGet, "/api/v1/config", "", nil, "")
	if cfg["authRequired"] != true {
		t.Errorf("config %v does not tell the UI to ask for a token", cfg)
	}
}

func TestPostedEventTypesAreCheckedAgainstTheRoleBeforeIngest(t *testing.T) {
	k := startKitchen(t, "manual", withTokens(t))
	ce := func(id, typ string) map[string]string {
		return map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": id,
			"ce-source": "test", "ce-type": typ, "ce-subject": "o-trust-1"}
	}
	order := `{"orderId":"o-trust-1","customerId":"alice","items":[{"flavour":"lemon","size":"S","quantity":1}]}`
	verdict := `{"orderId":"o-trust-1","customerId":"alice","amount":150,"valid":true}`
	tests := []struct {
		name, token, typ, body string
		want                   int
	}{
		{"a verdict from the shop", shopToken, "com.cupcakes.order.credit-validated", verdict, http.StatusForbidden},
		{"a verdict from staff", staffToken, "com.cupcakes.order.credit-validated", verdict, http.StatusForbidden},
		{"an order from staff", staffToken, "com.cupcakes.order.created", order, http.StatusForbidden},
		{"shipped from staff", staffToken, "com.cupcakes.order.shipped", `{"orderId":"o-trust-1"}`, http.StatusForbidden},
		{"an order without a token", "", "com.cupcakes.order.created", order, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := k.do(t, http.MethodPost, "/", tt.token, ce("e-"+tt.name, tt.typ), tt.body)
			if res.StatusCode != tt.want {
				t.Fatalf("%d %v, want %d", res.StatusCode, body, tt.want)
			}
		})
	}
	if res, _ := k.do(t, http.MethodGet, "/api/v1/order/o-trust-1", adminToken, nil, ""); res.StatusCode != http.StatusNotFound {
		t.Fatalf("a refused event wrote the order: %d", res.StatusCode)
	}
	if res, body := k.do(t, http.MethodPost, "/", shopToken, ce("e-ok", "com.cupcakes.order.created"), order); res.StatusCode >= 300 {
		t.Fatalf("the shop's order: %d %v", res.StatusCode, body)
	}
}

func TestNotificationStreamsBeyondTheCapGet503WithRetryAfter(t *testing.T) {
	k := startKitchen(t, "manual", func(s *httpapi.Server) { s.MaxSSEClients = 2 })
	a := openStream(t, k.srv.URL, "", 0)
	openStream(t, k.srv.URL, "?station=mixer", 0)
	k.waitStreams(t, 2)
	res, body := k.do(t, http.MethodGet, "/api/v1/notifications", "", nil, "")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || body["error"] == nil {
		t.Fatalf("a third stream: %d Retry-After=%q %v, want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	a.close()
	k.waitStreams(t, 1)
	openStream(t, k.srv.URL, "", 0) // its place is free again
}

// A stream reads nothing after its request: the runner's ReadTimeout must
// not end it (net/http clears the deadline for the background read).
func TestAStreamOutlivesTheServersReadTimeout(t *testing.T) {
	k := startKitchen(t, "manual")
	k.api.KeepAlive = 20 * time.Millisecond
	srv := httptest.NewUnstartedServer(k.api)
	srv.Config.ReadTimeout = 100 * time.Millisecond // the runner's is 30s
	srv.Start()
	defer func() { srv.CloseClientConnections(); srv.Close() }()
	s := openStream(t, srv.URL, "", 0)
	deadline := time.After(600 * time.Millisecond)
	alive := 0
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended after %d keep-alives: the read timeout cut it", alive)
			}
			if ev.Comment == "keep-alive" {
				alive++
			}
		case <-deadline:
			if alive < 10 {
				t.Fatalf("%d keep-alives in 600ms", alive)
			}
			return
		}
	}
}
