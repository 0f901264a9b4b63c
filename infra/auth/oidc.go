package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OIDCOptions configure the checking of JWTs. The work itself (discovery,
// fetching and caching the issuer's keys, signature, algorithm, issuer,
// audience and expiry checks) is go-oidc's, the library Knative Eventing's
// own receivers verify its delivery tokens with.
type OIDCOptions struct {
	// Issuer is the iss every token must carry (OIDC_ISSUER).
	Issuer string
	// Audience must be one of a token's aud (OIDC_AUDIENCE). Knative
	// Eventing asks for tokens for the audience its destination names.
	Audience string
	// DiscoveryURL is where /.well-known/openid-configuration is read when
	// that is not at the issuer (OIDC_DISCOVERY_URL): in a Kubernetes pod the
	// API server answers at https://kubernetes.default.svc while its tokens
	// say https://kubernetes.default.svc.cluster.local. Empty: the issuer.
	DiscoveryURL string
	// EventsSubjects are patterns (path.Match) of the sub claim: a token
	// without a roles claim whose subject matches gets the events role. Kubernetes
	// service-account tokens, which Knative Eventing sends, have subjects
	// system:serviceaccount:<namespace>:<name>. Empty: none.
	EventsSubjects []string
	// HTTPClient fetches the discovery document and the keys. Nil: inside
	// a Kubernetes pod, for a discovery URL on kubernetes.default.svc, a
	// client that trusts the cluster's CA and shows the pod's service
	// account token (the API server lets service accounts read its OIDC
	// discovery); otherwise a plain client with a timeout.
	HTTPClient *http.Client
}

// oidcVerifier checks JWTs with go-oidc. Discovery is lazy and retried:
// the first JWT after start (or after a failure, at most every
// retryDiscovery) fetches the issuer's configuration.
type oidcVerifier struct {
	opts   OIDCOptions
	client *http.Client
	log    *slog.Logger

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	lastErr  error
	lastTry  time.Time
}

// retryDiscovery spaces discovery attempts after a failure, so that a
// stream of JWTs does not hammer an issuer that is down.
var retryDiscovery = 5 * time.Second

func newOIDCVerifier(opts OIDCOptions, log *slog.Logger) (*oidcVerifier, error) {
	if opts.Audience == "" {
		return nil, errors.New("auth: an OIDC issuer needs an audience (OIDC_AUDIENCE)")
	}
	for _, p := range []string{opts.Issuer, opts.DiscoveryURL} {
		if p == "" {
			continue
		}
		if u, err := url.Parse(p); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("auth: OIDC URL %q is not an http(s) URL", p)
		}
	}
	for _, pat := range opts.EventsSubjects {
		if _, err := path.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("auth: subject pattern %q: %w", pat, err)
		}
	}
	if opts.DiscoveryURL == "" {
		opts.DiscoveryURL = opts.Issuer
	}
	client := opts.HTTPClient
	if client == nil {
		if c, ok := kubeClient(opts.DiscoveryURL, serviceAccountDir); ok {
			client = c
		} else {
			client = &http.Client{Timeout: 10 * time.Second}
		}
	}
	return &oidcVerifier{opts: opts, client: client, log: log}, nil
}

// Warm runs discovery now, so that a misconfigured issuer shows in the log
// at start rather than at the first event.
func (a *Authenticator) Warm(ctx context.Context) {
	if a == nil || a.oidc == nil {
		return
	}
	if _, err := a.oidc.get(ctx); err == nil {
		a.log.Info("OIDC issuer discovered", "issuer", a.oidc.opts.Issuer)
	}
}

func (o *oidcVerifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	if o.lastErr != nil && time.Since(o.lastTry) < retryDiscovery {
		return nil, o.lastErr
	}
	o.lastTry = time.Now()
	// The provider keeps this context's client for fetching keys later;
	// its cancellation must not end that.
	dctx := oidc.ClientContext(context.WithoutCancel(ctx), o.client)
	if o.opts.DiscoveryURL != o.opts.Issuer {
		dctx = oidc.InsecureIssuerURLContext(dctx, o.opts.Issuer)
	}
	dctx, cancel := context.WithTimeout(dctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, o.opts.DiscoveryURL)
	if err != nil {
		o.lastErr = fmt.Errorf("OIDC discovery at %s: %w", o.opts.DiscoveryURL, err)
		o.log.Error("OIDC discovery failed; JWTs are refused until it works", "issuer", o.opts.Issuer, "error", o.lastErr)
		return nil, o.lastErr
	}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.opts.Audience})
	o.lastErr = nil
	return o.verifier, nil
}

// verify checks a JWT and returns its principal.
func (o *oidcVerifier) verify(ctx context.Context, raw string) (Principal, error) {
	v, err := o.get(ctx)
	if err != nil {
		return Principal{}, &Error{Status: http.StatusServiceUnavailable, Msg: "cannot check the token now: the OIDC issuer is unreachable; try again"}
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return Principal{}, invalidToken("the token has expired")
		}
		return Principal{}, invalidToken("the token is not valid: " + strings.TrimPrefix(err.Error(), "oidc: "))
	}
	var claims struct {
		Roles json.RawMessage `json:"roles"`
	}
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, invalidToken("the token's claims cannot be read")
	}
	p := Principal{Subject: tok.Subject}
	if claims.Roles != nil {
		p.Roles = parseRolesClaim(claims.Roles)
	} else if o.eventsSubject(tok.Subject) {
		p.Roles = Events
	}
	return p, nil
}

// parseRolesClaim reads a roles claim, a list of names or one string of
// names separated by spaces or commas; names of no role here are ignored.
func parseRolesClaim(raw json.RawMessage) Roles {
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0
		}
		names = strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	}
	var roles Roles
	for _, n := range names {
		if r, ok := ParseRole(n); ok {
			roles |= r
		}
	}
	return roles
}

func (o *oidcVerifier) eventsSubject(sub string) bool {
	for _, pat := range o.opts.EventsSubjects {
		if ok, _ := path.Match(pat, sub); ok {
			return true
		}
	}
	return false
}

// serviceAccountDir is where Kubernetes mounts a pod's service account.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// kubeClient returns, inside a pod and for a discovery URL on the
// Kubernetes API server, a client that trusts the cluster's CA and sends
// the pod's service-account token (read at every request: Kubernetes
// rotates it). Only hosts with a certificate from the cluster CA get it.
func kubeClient(discoveryURL, dir string) (*http.Client, bool) {
	u, err := url.Parse(discoveryURL)
	if err != nil {
		return nil, false
	}
	if h := u.Hostname(); h != "kubernetes.default.svc" && !strings.HasPrefix(h, "kubernetes.default.svc.") {
		return nil, false
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, false
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, false
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: 10 * time.Second, Transport: &saTokenTransport{base: base, file: filepath.Join(dir, "token")}}, true
}

type saTokenTransport struct {
	base http.RoundTripper
	file string
}

func (t *saTokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		return nil, fmt.Errorf("refusing to send the service account token over %s to %s", r.URL.Scheme, r.URL.Host)
	}
	tok, err := os.ReadFile(t.file)
	if err != nil {
		return nil, fmt.Errorf("read service account token: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	return t.base.RoundTrip(r)
}
