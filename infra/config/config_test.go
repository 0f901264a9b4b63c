package config

import (
	"os"
	"strings"
	"testing"
)

func TestARunnerWithOnlySomeFunctionsOnItsOwnEmbeddedStoreIsRefused(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		refused string // "" when accepted
	}{
		{"all functions, embedded store", map[string]string{}, ""},
		{"all functions named, embedded store", map[string]string{"FUNCTIONS": "order-created,credit-validated,mixed,baked,decorated,packaged"}, ""},
		{"one function, embedded store", map[string]string{"FUNCTIONS": "mixed"}, "FUNCTIONS=mixed runs only part of the pipeline"},
		{"no function, embedded store", map[string]string{"FUNCTIONS": "none"}, "FUNCTIONS=none runs only part of the pipeline"},
		{"one function, over Kafka, embedded store", map[string]string{"FUNCTIONS": "baked", "KAFKA_BROKERS": "k:9092"}, "set MONGODB_URI"},
		{"one function, MongoDB", map[string]string{"FUNCTIONS": "mixed", "MONGODB_URI": "mongodb://m:27017/"}, ""},
		{"no function, MongoDB", map[string]string{"FUNCTIONS": "none", "MONGODB_URI": "mongodb://m:27017/"}, ""},
		{"one function, embedded store, allowed on purpose", map[string]string{"FUNCTIONS": "mixed", "ALLOW_PARTIAL_EMBEDDED_STORE": "true"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"FUNCTIONS", "MONGODB_URI", "KAFKA_BROKERS", "ALLOW_PARTIAL_EMBEDDED_STORE"} {
				v, ok := tt.env[k]
				t.Setenv(k, v) // restored after the test
				if !ok {
					os.Unsetenv(k)
				}
			}
			_, err := Load()
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Errorf("error %v, want one saying %q", err, tt.refused)
			}
		})
	}
}
