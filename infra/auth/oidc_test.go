package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cupcake-factory/cupcake-factory/infra/auth"
)

const audience = "serving.knative.dev/service/cupcake-factory/order-created"

// issuer is an OIDC issuer served by the test: a discovery document and a
// JWKS with the public half of a key the test signs with.
type issuer struct {
	srv       *httptest.Server
	url       string // the iss it announces
	key       *rsa.PrivateKey
	down      atomic.Bool // answer 503 to everything
	discovery atomic.Int32
}

func newIssuer(t *testing.T, announce string) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.discovery.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                is.url,
			"jwks_uri":                              is.srv.URL + "/openid/v1/jwks",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "k1", Algorithm: string(jose.RS256), Use: "sig"},
		}})
	})
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(is.srv.Close)
	is.url = announce
	if is.url == "" {
		is.url = is.srv.URL
	}
	return is
}

// claims are a token's claims; roles is left out when nil.
type claims struct {
	jwt.Claims
	Roles any `json:"roles,omitempty"`
}

func (is *issuer) valid(sub string, roles any) claims {
	now := time.Now()
	return claims{Claims: jwt.Claims{
		Issuer: is.url, Subject: sub, Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute)),
	}, Roles: roles}
}

func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, c claims) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsigned makes a token with "alg": "none", which go-jose will not sign.
func unsigned(t *testing.T, c claims) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`)) + "." + enc(payload) + "."
}

func newOIDC(t *testing.T, is *issuer, opts auth.OIDCOptions) *auth.Authenticator {
	t.Helper()
	if opts.Issuer == "" {
		opts.Issuer = is.url
	}
	opts.Audience = audience
	a, err := auth.New(auth.Options{
		Tokens: []auth.StaticToken{{Role: auth.Admin, Token: adminToken}},
		OIDC:   opts,
	}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestOIDCTokensAreCheckedByTheLibraryAgainstTheIssuersKeys(t *testing.T) {
	is := newIssuer(t, "")
	a := newOIDC(t, is, auth.OIDCOptions{EventsSubjects: []string{"system:serviceaccount:cupcake-factory:*"}})
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	expired := is.valid("alice", []string{"shop"})
	expired.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	expired.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	wrongAud := is.valid("alice", []string{"shop"})
	wrongAud.Audience = jwt.Audience{"serving.knative.dev/service/cupcake-factory/mixed"}
	wrongIss := is.valid("alice", []string{"shop"})
	wrongIss.Issuer = "https://evil.example"
	notYet := is.valid("alice", []string{"shop"})
	notYet.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
	good := sign(t, is.key, jose.RS256, "k1", is.valid("alice", []string{"shop"}))
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(
		`{"iss":"`+is.url+`","sub":"alice","aud":["`+audience+`"],"exp":9999999999,"roles":["admin"]}`)) + "." + parts[2]

	tests := []struct {
		name   string
		token  string
		status int
		roles  auth.Roles
	}{
		{"valid, roles as a list", good, 0, auth.Shop},
		{"valid, roles as one string", sign(t, is.key, jose.RS256, "k1", is.valid("bob", "staff admin")), 0, auth.Staff | auth.Admin},
		{"unknown role names give nothing", sign(t, is.key, jose.RS256, "k1", is.valid("eve", []string{"root", "superuser"})), 0, 0},
		{"Knative delivery: a service account of the namespace, no roles claim", sign(t, is.key, jose.RS256, "k1",
			is.valid("system:serviceaccount:cupcake-factory:orders-oidc-sources.knative.dev-kafkasource", nil)), 0, auth.Events},
		{"a service account of another namespace", sign(t, is.key, jose.RS256, "k1",
			is.valid("system:serviceaccount:default:curious", nil)), 0, 0},
		{"expired", sign(t, is.key, jose.RS256, "k1", expired), http.StatusUnauthorized, 0},
		{"not valid yet", sign(t, is.key, jose.RS256, "k1", notYet), http.StatusUnauthorized, 0},
		{"wrong audience", sign(t, is.key, jose.RS256, "k1", wrongAud), http.StatusUnauthorized, 0},
		{"wrong issuer", sign(t, is.key, jose.RS256, "k1", wrongIss), http.StatusUnauthorized, 0},
		{"alg none", unsigned(t, is.valid("alice", []string{"admin"})), http.StatusUnauthorized, 0},
		{"signed by another key under the same kid", sign(t, other, jose.RS256, "k1", is.valid("alice", []string{"admin"})), http.StatusUnauthorized, 0},
		{"signed by another key under an unknown kid", sign(t, other, jose.RS256, "k9", is.valid("alice", []string{"admin"})), http.StatusUnauthorized, 0},
		{"payload changed after signing", tampered, http.StatusUnauthorized, 0},
		{"HS256 with the public modulus as the secret", sign(t, is.key.PublicKey.N.Bytes(), jose.HS256, "k1", is.valid("alice", []string{"admin"})), http.StatusUnauthorized, 0},
		{"not a JWT", "Bearer-ish.garbage.here", http.StatusUnauthorized, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(request("Bearer " + tt.token))
			if got := auth.StatusOf(err); got != tt.status {
				t.Fatalf("status %d (%v), want %d", got, err, tt.status)
			}
			if p.Roles != tt.roles {
				t.Errorf("roles %s, want %s", p.Roles, tt.roles)
			}
			if err != nil && strings.Contains(err.Error(), tt.token) {
				t.Error("the error shows the token")
			}
		})
	}
	// Static tokens still work beside OIDC.
	if p, err := a.Authenticate(request("Bearer " + adminToken)); err != nil || p.Roles != auth.Admin {
		t.Errorf("static token beside OIDC: %v %s", err, p.Roles)
	}
	// A token without roles reaches nothing that needs one.
	_, err = a.Authorize(request("Bearer "+sign(t, is.key, jose.RS256, "k1", is.valid("nobody", nil))), "GET /api/v1/orders")
	if auth.StatusOf(err) != http.StatusForbidden {
		t.Errorf("a valid token without roles: %v, want 403", err)
	}
}

func TestOIDCDiscoveryAtAnotherURLThanTheIssuerAsInAKubernetesPod(t *testing.T) {
	// The API server answers discovery at https://kubernetes.default.svc but
	// its tokens say https://kubernetes.default.svc.cluster.local.
	const kubeIssuer = "https://kubernetes.default.svc.cluster.local"
	is := newIssuer(t, kubeIssuer)
	a := newOIDC(t, is, auth.OIDCOptions{Issuer: kubeIssuer, DiscoveryURL: is.srv.URL, EventsSubjects: []string{"system:serviceaccount:*"}})
	tok := sign(t, is.key, jose.RS256, "k1", is.valid("system:serviceaccount:cupcake-factory:trigger-oidc", nil))
	if p, err := a.Authenticate(request("Bearer " + tok)); err != nil || p.Roles != auth.Events {
		t.Fatalf("%v %s, want events", err, p.Roles)
	}
	wrong := is.valid("system:serviceaccount:cupcake-factory:trigger-oidc", nil)
	wrong.Issuer = is.srv.URL // the discovery URL is not the issuer
	if _, err := a.Authenticate(request("Bearer " + sign(t, is.key, jose.RS256, "k1", wrong))); auth.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("a token issued as the discovery URL: %v, want 401", err)
	}
}

func TestOIDCIssuerDownIs503AndIsNotAskedAgainAtOnce(t *testing.T) {
	is := newIssuer(t, "")
	is.down.Store(true)
	a := newOIDC(t, is, auth.OIDCOptions{})
	tok := sign(t, is.key, jose.RS256, "k1", is.valid("alice", []string{"shop"}))
	_, err := a.Authenticate(request("Bearer " + tok))
	if got := auth.StatusOf(err); got != http.StatusServiceUnavailable {
		t.Fatalf("issuer down: status %d (%v), want 503", got, err)
	}
	// Within the retry interval the failure is remembered, not re-fetched.
	before := is.discovery.Load()
	is.down.Store(false)
	_, _ = a.Authenticate(request("Bearer " + tok))
	if is.discovery.Load() != before {
		t.Error("discovery re-fetched at once after a failure")
	}
}

func TestOIDCNeedsAnAudienceAndHTTPURLs(t *testing.T) {
	bad := []auth.OIDCOptions{
		{Issuer: "https://issuer.example"},
		{Issuer: "issuer.example", Audience: "a"},
		{Issuer: "https://issuer.example", Audience: "a", DiscoveryURL: "ftp://x"},
		{Issuer: "https://issuer.example", Audience: "a", EventsSubjects: []string{"[unclosed"}},
	}
	for _, o := range bad {
		if _, err := auth.New(auth.Options{OIDC: o}, quietLog()); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
