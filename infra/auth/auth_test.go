package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/auth"
)

const (
	adminToken  = "admin-token-0123456789"
	shopToken   = "shop-token-0123456789"
	staffToken  = "staff-token-0123456789"
	eventsToken = "events-token-0123456789"
	bothToken   = "shop-and-staff-0123456789"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)) }

func newStatic(t *testing.T) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Options{Tokens: []auth.StaticToken{
		{Role: auth.Admin, Token: adminToken},
		{Role: auth.Shop, Token: shopToken},
		{Role: auth.Staff, Token: staffToken},
		{Role: auth.Events, Token: eventsToken},
		{Role: auth.Shop, Token: bothToken},
		{Role: auth.Staff, Token: bothToken},
	}}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func request(header string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/orders", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	return r
}

func TestStaticTokensGiveTheirRoles(t *testing.T) {
	a := newStatic(t)
	tests := []struct {
		name, header string
		want         auth.Roles
		status       int
	}{
		{"admin", "Bearer " + adminToken, auth.Admin, 0},
		{"shop", "Bearer " + shopToken, auth.Shop, 0},
		{"staff", "Bearer " + staffToken, auth.Staff, 0},
		{"events", "Bearer " + eventsToken, auth.Events, 0},
		{"one token listed for two roles has both", "Bearer " + bothToken, auth.Shop | auth.Staff, 0},
		{"scheme is case-insensitive", "bearer " + shopToken, auth.Shop, 0},
		{"no header", "", 0, http.StatusUnauthorized},
		{"unknown token", "Bearer not-a-token-at-all", 0, http.StatusUnauthorized},
		{"a prefix of a token", "Bearer " + adminToken[:10], 0, http.StatusUnauthorized},
		{"a token with more after it", "Bearer " + adminToken + "x", 0, http.StatusUnauthorized},
		{"basic auth", "Basic YWRtaW46YWRtaW4=", 0, http.StatusUnauthorized},
		{"bearer without token", "Bearer ", 0, http.StatusUnauthorized},
		{"a JWT-shaped token without OIDC", "Bearer a.b.c", 0, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(request(tt.header))
			if got := auth.StatusOf(err); got != tt.status {
				t.Fatalf("status %d (%v), want %d", got, err, tt.status)
			}
			if p.Roles != tt.want {
				t.Errorf("roles %s, want %s", p.Roles, tt.want)
			}
			if strings.Contains(p.Subject, "token-0123") {
				t.Errorf("subject %q shows the token", p.Subject)
			}
			if err != nil && strings.Contains(err.Error(), "0123456789") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

func TestWithoutTokenSourcesEveryoneHasEveryRoleAndAWarningIsLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	a, err := auth.New(auth.Options{}, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Enabled() {
		t.Fatal("enabled without tokens or issuer")
	}
	for _, h := range []string{"", "Bearer whatever"} {
		p, err := a.Authenticate(request(h))
		if err != nil || p.Roles != auth.AnyRole {
			t.Errorf("header %q: %v %s, want every role", h, err, p.Roles)
		}
	}
	if n := strings.Count(buf.String(), "authentication is OFF"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, buf.String())
	}
	// A nil Authenticator (a server built without one) is open too.
	var none *auth.Authenticator
	if p, err := none.Authenticate(request("")); err != nil || p.Roles != auth.AnyRole {
		t.Errorf("nil authenticator: %v %s", err, p.Roles)
	}
}

func TestNewRefusesATokenWithoutRoleOrValue(t *testing.T) {
	for _, tok := range []auth.StaticToken{{Role: auth.Admin}, {Token: "x-0123456789abcdef"}} {
		if _, err := auth.New(auth.Options{Tokens: []auth.StaticToken{tok}}, quietLog()); err == nil {
			t.Errorf("%+v accepted", tok)
		}
	}
}

func TestAuthorizeFollowsTheRouteTable(t *testing.T) {
	a := newStatic(t)
	tokens := map[string]string{"admin": adminToken, "shop": shopToken, "staff": staffToken, "events": eventsToken, "none": ""}
	// want: the status per caller for a route; 0 is allowed.
	tests := []struct {
		pattern string
		want    map[string]int
	}{
		{"GET /health/readiness", map[string]int{"none": 0, "shop": 0}},
		{"GET /{$}", map[string]int{"none": 0}},
		{"GET /ui/{name}", map[string]int{"none": 0}},
		{"GET /api/v1/orders", map[string]int{"none": 401, "admin": 0, "shop": 0, "staff": 0, "events": 0}},
		{"POST /api/v1/customers", map[string]int{"none": 401, "admin": 0, "shop": 403, "staff": 403, "events": 403}},
		{"PUT /api/v1/customers/{id}/credit", map[string]int{"none": 401, "admin": 0, "shop": 403, "staff": 403, "events": 403}},
		{"POST /api/v1/order", map[string]int{"none": 401, "admin": 0, "shop": 0, "staff": 403, "events": 403}},
		{"POST /api/v1/order/mix", map[string]int{"none": 401, "admin": 0, "shop": 403, "staff": 0, "events": 403}},
		{"POST /api/v1/order/reporterror", map[string]int{"none": 401, "admin": 0, "shop": 403, "staff": 0, "events": 403}},
		{"POST /{$}", map[string]int{"none": 401, "admin": 0, "shop": 0, "staff": 0, "events": 0}},
		{"GET /not/in/the/table", map[string]int{"admin": 403, "none": 403}},
	}
	for _, tt := range tests {
		for who, want := range tt.want {
			t.Run(tt.pattern+"/"+who, func(t *testing.T) {
				h := ""
				if tokens[who] != "" {
					h = "Bearer " + tokens[who]
				}
				r, err := a.Authorize(request(h), tt.pattern)
				if got := auth.StatusOf(err); got != want {
					t.Fatalf("status %d (%v), want %d", got, err, want)
				}
				if acc, _ := auth.RouteAccess(tt.pattern); err == nil && !acc.Open && tokens[who] != "" {
					if _, ok := auth.PrincipalFrom(r.Context()); !ok {
						t.Error("no principal recorded in the request's context")
					}
				}
			})
		}
	}
}

func TestEventAllowedFollowsTheEventTable(t *testing.T) {
	tests := []struct {
		typ     string
		allowed auth.Roles
	}{
		{events.TypeOrderCreated, auth.Admin | auth.Shop | auth.Events},
		{events.TypeCreditValidated, auth.Admin | auth.Events},
		{events.TypeMixed, auth.Admin | auth.Staff | auth.Events},
		{events.TypeBaked, auth.Admin | auth.Staff | auth.Events},
		{events.TypeDecorated, auth.Admin | auth.Staff | auth.Events},
		{events.TypePackaged, auth.Admin | auth.Staff | auth.Events},
		{events.TypeShipped, auth.Admin | auth.Events},
		{events.TypeCancelled, auth.Admin | auth.Events},
		{events.TypeFailed, auth.Admin | auth.Events},
		{events.TypeStatusChanged, auth.Admin | auth.Events},
		{"com.example.unknown", auth.Admin | auth.Events},
	}
	for _, tt := range tests {
		for _, role := range []auth.Roles{auth.Admin, auth.Shop, auth.Staff, auth.Events} {
			ctx := auth.WithPrincipal(context.Background(), auth.Principal{Subject: "test", Roles: role})
			err := auth.EventAllowed(ctx, tt.typ)
			want := 0
			if tt.allowed&role == 0 {
				want = http.StatusForbidden
			}
			if got := auth.StatusOf(err); got != want {
				t.Errorf("%s by %s: status %d (%v), want %d", tt.typ, role, got, err, want)
			}
		}
	}
	if got := auth.StatusOf(auth.EventAllowed(context.Background(), events.TypeOrderCreated)); got != http.StatusUnauthorized {
		t.Errorf("no caller recorded: status %d, want 401", got)
	}
}

func TestEveryContractEventTypeIsInTheTable(t *testing.T) {
	types := []string{events.TypeShipped, events.TypeCancelled, events.TypeFailed, events.TypeStatusChanged}
	for _, s := range events.Pipeline {
		types = append(types, s.Takes)
		types = append(types, events.RepliesOf(s)...)
	}
	for _, typ := range types {
		found := false
		for _, k := range auth.EventTypes() {
			found = found || k == typ
		}
		if !found {
			t.Errorf("%s is not in the event table", typ)
		}
	}
}

func TestMiddlewareAnswersRefusalsAsJSONWithoutCallingTheHandler(t *testing.T) {
	a := newStatic(t)
	called := false
	h := a.Middleware("POST /api/v1/customers", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		w.WriteHeader(http.StatusCreated)
	}))
	tests := []struct {
		header string
		status int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong-token-0000000000", http.StatusUnauthorized},
		{"Bearer " + shopToken, http.StatusForbidden},
		{"Bearer " + adminToken, http.StatusCreated},
	}
	for _, tt := range tests {
		called = false
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/api/v1/customers", strings.NewReader(`{}`))
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		h.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%q: %d, want %d", tt.header, w.Code, tt.status)
		}
		if called != (tt.status == http.StatusCreated) {
			t.Errorf("%q: handler called=%v", tt.header, called)
		}
		if tt.status >= 400 {
			var body struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Errorf("%q: body %q is not {\"error\"}", tt.header, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("%q: Content-Type %q", tt.header, ct)
			}
		}
		if tt.status == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%q: 401 without a Bearer challenge", tt.header)
		}
	}
}

func TestFromEventContextReadsTheHeaderSDKGoRecordsAndFailsClosedWithoutIt(t *testing.T) {
	a := newStatic(t)
	withHeader := func(h string) context.Context {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		return cehttp.WithRequestDataAtContext(context.Background(), r)
	}
	tests := []struct {
		name   string
		ctx    context.Context
		typ    string
		status int
	}{
		{"events token", withHeader("Bearer " + eventsToken), events.TypeCreditValidated, 0},
		{"shop token, a verdict", withHeader("Bearer " + shopToken), events.TypeCreditValidated, http.StatusForbidden},
		{"no token", withHeader(""), events.TypeOrderCreated, http.StatusUnauthorized},
		{"no request data (func-go)", context.Background(), events.TypeOrderCreated, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, err := a.FromEventContext(tt.ctx)
			if err == nil {
				err = auth.EventAllowed(ctx, tt.typ)
			}
			if got := auth.StatusOf(err); got != tt.status {
				t.Errorf("status %d (%v), want %d", got, err, tt.status)
			}
		})
	}
	open, _ := auth.New(auth.Options{}, quietLog())
	ctx, err := open.FromEventContext(context.Background())
	if err != nil || auth.EventAllowed(ctx, events.TypeCreditValidated) != nil {
		t.Errorf("authentication off: %v", err)
	}
}
