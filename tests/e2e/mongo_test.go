package e2e

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/ferret"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// TestScenariosOnMongoDB runs the same scenarios with MONGODB_URI pointing
// at a MongoDB wire-protocol server (FerretDB) started by the test, one
// database per process.
func TestScenariosOnMongoDB(t *testing.T) {
	uri := ferret.Start(t)
	var n atomic.Int64
	RunScenarios(t, func(t *testing.T, env map[string]string) *runner.Process {
		full := map[string]string{"MONGODB_URI": uri, "MONGODB_DATABASE": fmt.Sprintf("e2e%d", n.Add(1))}
		for k, v := range env {
			full[k] = v
		}
		return runner.Start(t, full)
	})
}
