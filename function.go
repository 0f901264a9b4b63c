// Package function is cupcake-factory as a Knative function: New returns
// the instance kn func's Go scaffold serves with knative.dev/func-go. This
// file is that adapter alone; app.go puts the system together, and the
// local runner in cmd/cupcake-factory serves the same App with the REST API
// and the web UI around it.
package function

import (
	"context"
	"net/http"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cupcake-factory/cupcake-factory/infra/config"
	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
)

// Function is the kn func instance.
type Function struct {
	mu  sync.RWMutex
	app *App
}

// New returns an instance; Start readies it.
func New() *Function { return &Function{} }

// Start reads the configuration from the environment (func-go passes the
// same values in cfg) and starts the App.
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	app, err := Open(ctx, cfg, NewLogger(cfg))
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.app = app
	f.mu.Unlock()
	return nil
}

// Stop closes the App.
func (f *Function) Stop(ctx context.Context) error {
	f.mu.Lock()
	app := f.app
	f.app = nil
	f.mu.Unlock()
	if app == nil {
		return nil
	}
	return app.Close(ctx)
}

// Handle takes a CloudEvent: it is checked, then handled by the function for
// its type (and what that emits by the functions here that take it). The
// reply returned is the first event no function here takes. Errors carry the
// HTTP status func-go should answer with.
func (f *Function) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	app := f.App()
	if app == nil {
		return nil, cehttp.NewResult(http.StatusServiceUnavailable, "not started")
	}
	reply, err := app.Ingest(ctx, e)
	if err != nil {
		return nil, cehttp.NewResult(httpapi.EventStatusOf(err), "%s", err.Error())
	}
	return reply, nil
}

// Ready reports whether the store answers.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	app := f.App()
	if app == nil {
		return false, nil
	}
	if err := app.Ready(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Alive reports whether the instance is running.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// App returns the started App, or nil.
func (f *Function) App() *App {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.app
}
