package function_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	function "github.com/cupcake-factory/cupcake-factory"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
)

// openApp opens the whole system in-process, as the runner does with no
// configuration but this: the embedded store in a fresh directory, every
// function, events in-process, the kitchen in mode, the demo customer if
// seed. It is closed when the test ends.
func openApp(t *testing.T, mode string, seed bool) *function.App {
	t.Helper()
	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("MONGODB_URI", "")
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("FUNCTIONS", strings.Join(events.FunctionNames(), ","))
	t.Setenv("KITCHEN_MODE", mode)
	t.Setenv("SEED_DEMO", strconv.FormatBool(seed))
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	app, err := function.Open(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Close(context.Background()) })
	return app
}
