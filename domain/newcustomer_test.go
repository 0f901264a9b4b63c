package domain_test

import (
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

func TestNewCustomerNamesRefuseControlCharacters(t *testing.T) {
	tests := []struct {
		name string
		want string // "" = accepted
	}{
		{"Alice Demo", ""},
		{"Zoë Ångström-Łukasz", ""},
		{"Alice\x00Admin", "control characters"},
		{"Alice\x1b[31mred", "control characters"},
		{"two\nlines", "control characters"},
		{"tab\there", "control characters"},
		{"del\x7f", "control characters"},
		{"   ", "name is required"},
	}
	for _, tt := range tests {
		err := domain.NewCustomer{ID: "c-1", Name: tt.name, CreditLimit: 100}.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q refused: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}
