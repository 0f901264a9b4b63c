package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// StaticToken is one bearer token and the role it gives (AUTH_TOKENS holds
// them as role:token pairs).
type StaticToken struct {
	Role  Roles
	Token string
}

// Options configure an Authenticator. With no tokens and no OIDC issuer,
// authentication is off.
type Options struct {
	Tokens []StaticToken
	OIDC   OIDCOptions
}

// Principal is who made a request and what they may do.
type Principal struct {
	// Subject names the caller for logs: "token:<role>" for a static
	// token, the JWT's sub claim otherwise. Never the token itself.
	Subject string
	Roles   Roles
}

// anonymous is the caller when authentication is off: the system is open.
var anonymous = Principal{Subject: "anonymous (authentication off)", Roles: AnyRole}

// Authenticator turns bearer tokens into principals.
type Authenticator struct {
	// tokens hold the SHA-256 of each static token: comparing fixed-size
	// digests in constant time gives nothing away about a token's length
	// or its matching prefix.
	tokens []hashedToken
	oidc   *oidcVerifier // nil without OIDC_ISSUER
	log    *slog.Logger
}

type hashedToken struct {
	digest [sha256.Size]byte
	role   Roles
}

// New returns an Authenticator. Without any token source it lets everyone
// in and says so once in the log. OIDC discovery happens at the first JWT
// (and is retried after a failure), so that a slow issuer does not stop
// the process from starting.
func New(opts Options, log *slog.Logger) (*Authenticator, error) {
	a := &Authenticator{log: log}
	for i, t := range opts.Tokens {
		if t.Token == "" || t.Role == 0 {
			return nil, fmt.Errorf("auth: static token %d has no token or no role", i+1)
		}
		a.tokens = append(a.tokens, hashedToken{digest: sha256.Sum256([]byte(t.Token)), role: t.Role})
	}
	if opts.OIDC.Issuer != "" {
		v, err := newOIDCVerifier(opts.OIDC, log)
		if err != nil {
			return nil, err
		}
		a.oidc = v
	}
	if !a.Enabled() {
		log.Warn("authentication is OFF: anyone who can reach this server may do everything; set AUTH_TOKENS or OIDC_ISSUER to require tokens")
	} else {
		log.Info("authentication on", "static_tokens", len(a.tokens), "oidc_issuer", opts.OIDC.Issuer, "oidc_audience", opts.OIDC.Audience)
	}
	return a, nil
}

// Enabled reports whether requests need a token.
func (a *Authenticator) Enabled() bool {
	return a != nil && (len(a.tokens) > 0 || a.oidc != nil)
}

// Authenticate finds out who sent r. With authentication off everyone is
// let in with every role. A request without a bearer token, or with one
// that is not valid, gets an *Error with status 401.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if !a.Enabled() {
		return anonymous, nil
	}
	return a.authenticateHeader(r.Context(), r.Header.Get("Authorization"))
}

func (a *Authenticator) authenticateHeader(ctx context.Context, header string) (Principal, error) {
	token, err := bearer(header)
	if err != nil {
		return Principal{}, err
	}
	if p, ok := a.static(token); ok {
		return p, nil
	}
	if a.oidc != nil && looksLikeJWT(token) {
		return a.oidc.verify(ctx, token)
	}
	return Principal{}, invalidToken("the token is not valid")
}

// static compares token with every static token, always all of them, in
// constant time; one token may be listed for several roles.
func (a *Authenticator) static(token string) (Principal, bool) {
	d := sha256.Sum256([]byte(token))
	var roles Roles
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			roles |= t.role
		}
	}
	if roles == 0 {
		return Principal{}, false
	}
	return Principal{Subject: "token:" + roles.String(), Roles: roles}, true
}

// bearer takes the token out of an Authorization header.
func bearer(header string) (string, error) {
	if header == "" {
		return "", &Error{Status: http.StatusUnauthorized, Msg: "authentication required: send Authorization: Bearer <token>"}
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", invalidRequest("the Authorization header must be \"Bearer <token>\"")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", invalidRequest("the Authorization header must be \"Bearer <token>\"")
	}
	return token, nil
}

func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// Error is a refusal: 401 (who are you?) or 403 (not allowed). Its message
// never holds the token.
type Error struct {
	Status int
	Msg    string
	// challenge is the error code of the WWW-Authenticate header of a 401
	// (RFC 6750): "" when no token came, invalid_token, invalid_request.
	challenge string
}

func (e *Error) Error() string { return e.Msg }

// Challenge returns the WWW-Authenticate header value a 401 carries.
func (e *Error) Challenge() string {
	if e.challenge == "" {
		return `Bearer realm="cupcake-factory"`
	}
	return fmt.Sprintf(`Bearer realm="cupcake-factory", error=%q`, e.challenge)
}

func invalidToken(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Msg: msg, challenge: "invalid_token"}
}

func invalidRequest(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Msg: msg, challenge: "invalid_request"}
}

func forbidden(p Principal, what string, need Roles) *Error {
	return &Error{Status: http.StatusForbidden,
		Msg: fmt.Sprintf("%s may not %s: it %s (it has %s)", p.Subject, what, describe(need), p.Roles)}
}

// StatusOf returns the HTTP status of an authentication or authorization
// error, and 0 for any other error.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

type principalKey struct{}

// WithPrincipal returns ctx carrying who made the request.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns who made the request ctx belongs to, as the
// middleware (or FromEventContext) recorded it.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Authorize checks the route table for pattern: it authenticates r (unless
// the route is open) and returns r carrying the principal, or an *Error.
// A pattern missing from the table is refused: fail closed.
func (a *Authenticator) Authorize(r *http.Request, pattern string) (*http.Request, error) {
	acc, ok := RouteAccess(pattern)
	if !ok {
		return r, &Error{Status: http.StatusForbidden, Msg: fmt.Sprintf("route %q is not in the role table", pattern)}
	}
	if acc.Open {
		return r, nil
	}
	p, err := a.Authenticate(r)
	if err != nil {
		return r, err
	}
	r = r.WithContext(WithPrincipal(r.Context(), p))
	if !p.Roles.Allows(acc.Roles) {
		return r, forbidden(p, pattern, acc.Roles)
	}
	return r, nil
}

// EventAllowed checks whether the caller recorded in ctx may post an event
// of type t. Without a recorded caller it refuses with 401: fail closed.
func EventAllowed(ctx context.Context, t string) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return &Error{Status: http.StatusUnauthorized, Msg: "authentication required: no caller recorded for this event"}
	}
	if need := EventRoles(t); !p.Roles.Allows(need) {
		return forbidden(p, "post events of type "+t, need)
	}
	return nil
}

// Middleware guards next with the table entry of pattern and answers a
// refusal itself: 401 or 403 with a JSON body {"error": "..."}, before next
// sees the request, so nothing is read or written.
func (a *Authenticator) Middleware(pattern string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := a.Authorize(r, pattern)
		if err != nil {
			WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteError answers an *Error: its status, the WWW-Authenticate challenge
// of a 401, and a JSON body {"error": "..."}.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Msg: "internal error"}
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", e.Challenge())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.Msg})
}

// FromEventContext records the caller of a CloudEvent handed to a function
// outside this package's middleware (the kn func entry point, Handle). It
// reads the Authorization header from the request data sdk-go puts in the
// context when its HTTP protocol runs with WithRequestDataAtContextMiddleware.
// With authentication off the caller is anonymous with every role. With it
// on and no request data in ctx (func-go's server does not add it) the
// answer is 401: an event whose sender cannot be checked is refused.
func (a *Authenticator) FromEventContext(ctx context.Context) (context.Context, error) {
	if _, ok := PrincipalFrom(ctx); ok {
		return ctx, nil
	}
	if !a.Enabled() {
		return WithPrincipal(ctx, anonymous), nil
	}
	rd := cehttp.RequestDataFromContext(ctx)
	if rd == nil {
		return ctx, &Error{Status: http.StatusUnauthorized,
			Msg: "authentication required, and this entry point cannot see the request's Authorization header"}
	}
	p, err := a.authenticateHeader(ctx, rd.Header.Get("Authorization"))
	if err != nil {
		return ctx, err
	}
	return WithPrincipal(ctx, p), nil
}
