package e2e

import (
	"testing"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// TestScenariosOnTheEmbeddedStore runs the binary with nothing configured
// but a port and a data directory: the README's first run.
func TestScenariosOnTheEmbeddedStore(t *testing.T) {
	RunScenarios(t, func(t *testing.T, env map[string]string) *runner.Process {
		return runner.Start(t, env)
	})
}
