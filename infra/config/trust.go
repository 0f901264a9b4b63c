package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/cupcake-factory/cupcake-factory/infra/auth"
)

// Trust is who may do what, and how much live fan-out one process holds.
// (Embedded in Config, so that its variables carry no prefix.)
type Trust struct {
	// AuthTokens are static bearer tokens, role:token pairs separated by
	// commas (AUTH_TOKENS), or the same read from the file AUTH_TOKENS_FILE
	// (a docker-compose or Kubernetes secret), where newlines separate too.
	AuthTokens     AuthTokens `envconfig:"AUTH_TOKENS"`
	AuthTokensFile string     `envconfig:"AUTH_TOKENS_FILE"`
	// OIDCIssuer and OIDCAudience: JWTs from this issuer for this audience
	// are accepted too, with the roles of their roles claim.
	OIDCIssuer   string `envconfig:"OIDC_ISSUER"`
	OIDCAudience string `envconfig:"OIDC_AUDIENCE"`
	// OIDCDiscoveryURL is where the issuer's discovery document is read when
	// not at the issuer itself (in a pod: https://kubernetes.default.svc).
	OIDCDiscoveryURL string `envconfig:"OIDC_DISCOVERY_URL"`
	// OIDCEventsSubjects are sub-claim patterns (path.Match) of tokens that
	// count as the events role when they carry no roles claim: Knative
	// Eventing's OIDC delivery tokens are service-account tokens.
	OIDCEventsSubjects []string `envconfig:"OIDC_EVENTS_SUBJECTS" default:"system:serviceaccount:*"`
	// MaxSSEClients caps the live-notification connections held at once;
	// beyond it the answer is 503 with Retry-After.
	MaxSSEClients int `envconfig:"MAX_SSE_CLIENTS" default:"1000"`
}

// MinTokenLength is the shortest static token accepted: shorter ones can
// be guessed.
const MinTokenLength = 16

// AuthTokens holds the parsed AUTH_TOKENS. It never shows a token: not in
// logs, not in errors (decoding never fails, so envconfig's error, which
// quotes the raw value, cannot happen; problems wait for Validate).
type AuthTokens struct {
	tokens   []auth.StaticToken
	problems []string
	set      bool
}

// Decode parses role:token pairs; it is envconfig's hook.
func (a *AuthTokens) Decode(value string) error {
	*a = AuthTokens{set: strings.TrimSpace(value) != ""}
	entries := strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	n := 0
	for _, e := range entries {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		n++
		name, token, ok := strings.Cut(e, ":")
		name, token = strings.TrimSpace(name), strings.TrimSpace(token)
		role, known := auth.ParseRole(name)
		switch {
		case !ok || token == "":
			a.problems = append(a.problems, fmt.Sprintf("AUTH_TOKENS entry %d is not role:token", n))
		case !known:
			a.problems = append(a.problems, fmt.Sprintf("AUTH_TOKENS entry %d: unknown role %q (known: %s)", n, name, strings.Join(auth.RoleNames(), ", ")))
		case len(token) < MinTokenLength:
			a.problems = append(a.problems, fmt.Sprintf("AUTH_TOKENS entry %d (%s): the token must be at least %d characters", n, name, MinTokenLength))
		default:
			a.tokens = append(a.tokens, auth.StaticToken{Role: role, Token: token})
		}
	}
	return nil
}

// Tokens returns the parsed tokens.
func (a AuthTokens) Tokens() []auth.StaticToken { return a.tokens }

// String shows how many tokens there are for which roles, never a token.
func (a AuthTokens) String() string {
	var roles []string
	for _, t := range a.tokens {
		roles = append(roles, t.Role.String())
	}
	return fmt.Sprintf("%d tokens [%s]", len(a.tokens), strings.Join(roles, " "))
}

// GoString keeps %#v from printing the tokens.
func (a AuthTokens) GoString() string { return "config.AuthTokens{" + a.String() + "}" }

// LogValue keeps slog from printing the tokens.
func (a AuthTokens) LogValue() slog.Value { return slog.StringValue(a.String()) }

// normalise reads AUTH_TOKENS_FILE.
func (t *Trust) normalise() {
	if t.AuthTokensFile == "" {
		return
	}
	if t.AuthTokens.set {
		t.AuthTokens.problems = append(t.AuthTokens.problems, "set AUTH_TOKENS or AUTH_TOKENS_FILE, not both")
		return
	}
	b, err := os.ReadFile(t.AuthTokensFile)
	if err != nil {
		t.AuthTokens.problems = append(t.AuthTokens.problems, fmt.Sprintf("AUTH_TOKENS_FILE: %v", err))
		return
	}
	_ = t.AuthTokens.Decode(string(b))
	if len(t.AuthTokens.tokens) == 0 && len(t.AuthTokens.problems) == 0 {
		t.AuthTokens.problems = append(t.AuthTokens.problems, fmt.Sprintf("AUTH_TOKENS_FILE %s holds no token", t.AuthTokensFile))
	}
}

func (t Trust) problems() []string {
	p := append([]string(nil), t.AuthTokens.problems...)
	if t.OIDCIssuer != "" && t.OIDCAudience == "" {
		p = append(p, "OIDC_AUDIENCE must be set with OIDC_ISSUER (the audience tokens must be issued for)")
	}
	if t.OIDCIssuer == "" && (t.OIDCAudience != "" || t.OIDCDiscoveryURL != "") {
		p = append(p, "OIDC_AUDIENCE and OIDC_DISCOVERY_URL need OIDC_ISSUER")
	}
	for name, v := range map[string]string{"OIDC_ISSUER": t.OIDCIssuer, "OIDC_DISCOVERY_URL": t.OIDCDiscoveryURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p = append(p, fmt.Sprintf("%s must be an http(s) URL, got %q", name, v))
		}
	}
	for _, pat := range t.OIDCEventsSubjects {
		if _, err := path.Match(pat, ""); err != nil {
			p = append(p, fmt.Sprintf("OIDC_EVENTS_SUBJECTS: bad pattern %q", pat))
		}
	}
	if t.MaxSSEClients < 1 {
		p = append(p, fmt.Sprintf("MAX_SSE_CLIENTS must be at least 1, got %d", t.MaxSSEClients))
	}
	return p
}

// AuthOptions are the options of the authenticator.
func (t Trust) AuthOptions() auth.Options {
	return auth.Options{
		Tokens: t.AuthTokens.Tokens(),
		OIDC: auth.OIDCOptions{
			Issuer: t.OIDCIssuer, Audience: t.OIDCAudience, DiscoveryURL: t.OIDCDiscoveryURL,
			EventsSubjects: t.OIDCEventsSubjects,
		},
	}
}
