package config_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/infra/auth"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
)

const secret = "s3cret-0123456789abcdef"

func TestTrustSettings(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		problem string // "" for a valid configuration
		tokens  []auth.Roles
	}{
		{"nothing set: open", nil, "", nil},
		{"role:token pairs", map[string]string{"AUTH_TOKENS": "admin:" + secret + ", shop:" + secret + "x"}, "", []auth.Roles{auth.Admin, auth.Shop}},
		{"unknown role", map[string]string{"AUTH_TOKENS": "root:" + secret}, `unknown role "root"`, nil},
		{"no role", map[string]string{"AUTH_TOKENS": secret}, "entry 1 is not role:token", nil},
		{"short token", map[string]string{"AUTH_TOKENS": "staff:short"}, "at least 16 characters", nil},
		{"OIDC needs an audience", map[string]string{"OIDC_ISSUER": "https://issuer.example"}, "OIDC_AUDIENCE must be set", nil},
		{"an audience needs an issuer", map[string]string{"OIDC_AUDIENCE": "x"}, "need OIDC_ISSUER", nil},
		{"issuer must be a URL", map[string]string{"OIDC_ISSUER": "issuer.example", "OIDC_AUDIENCE": "x"}, "OIDC_ISSUER must be an http(s) URL", nil},
		{"OIDC complete", map[string]string{"OIDC_ISSUER": "https://kubernetes.default.svc.cluster.local", "OIDC_AUDIENCE": "x",
			"OIDC_DISCOVERY_URL": "https://kubernetes.default.svc"}, "", nil},
		{"bad subject pattern", map[string]string{"OIDC_EVENTS_SUBJECTS": "[x"}, "OIDC_EVENTS_SUBJECTS", nil},
		{"no SSE clients", map[string]string{"MAX_SSE_CLIENTS": "0"}, "MAX_SSE_CLIENTS must be at least 1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := config.Load()
			if tt.problem == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Fatalf("error %v, want one saying %q", err, tt.problem)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the token: %v", err)
			}
			var got []auth.Roles
			for _, tok := range c.AuthTokens.Tokens() {
				got = append(got, tok.Role)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.tokens) {
				t.Errorf("tokens for roles %v, want %v", got, tt.tokens)
			}
		})
	}
}

func TestDefaultsAreOpenWithAThousandLiveClients(t *testing.T) {
	c, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxSSEClients != 1000 {
		t.Errorf("MAX_SSE_CLIENTS default %d, want 1000", c.MaxSSEClients)
	}
	if len(c.AuthTokens.Tokens()) != 0 || c.OIDCIssuer != "" {
		t.Error("authentication is configured by default")
	}
	if got := c.OIDCEventsSubjects; len(got) != 1 || got[0] != "system:serviceaccount:*" {
		t.Errorf("OIDC_EVENTS_SUBJECTS default %v", got)
	}
}

func TestTokensComeFromAFileAndNeverShowInPrintsOrLogs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth-tokens")
	if err := os.WriteFile(file, []byte("admin:"+secret+"\nstaff:"+secret+"-staff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUTH_TOKENS_FILE", file)
	c, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.AuthTokens.Tokens()); n != 2 {
		t.Fatalf("%d tokens from the file, want 2", n)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c, "tokens", c.AuthTokens)
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logged.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("a token shows in %q", s)
		}
	}

	t.Setenv("AUTH_TOKENS", "admin:"+secret)
	if _, err := config.Load(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("AUTH_TOKENS and AUTH_TOKENS_FILE together: %v", err)
	}
	t.Setenv("AUTH_TOKENS", "")
	t.Setenv("AUTH_TOKENS_FILE", filepath.Join(t.TempDir(), "missing"))
	if _, err := config.Load(); err == nil || !strings.Contains(err.Error(), "AUTH_TOKENS_FILE") {
		t.Errorf("a missing file: %v", err)
	}
}
