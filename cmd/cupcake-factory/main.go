// Command cupcake-factory runs the whole system in one process: the
// functions named in FUNCTIONS (all six by default), the REST API, the
// notifications stream and the web UI, on LISTEN_ADDRESS. With no other
// configuration it needs nothing else: events travel in-process and data is
// kept in an embedded store under DATA_DIR.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	function "github.com/cupcake-factory/cupcake-factory"
	"github.com/cupcake-factory/cupcake-factory/infra/auth"
	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
)

// gcPercent is the garbage collector's target when GOGC is not set: collect
// when the heap has grown by 400 % since the last collection, not the
// runtime's 100 %. The live heap is small (tens of MB: the recent orders
// cached decoded, the notifications kept for replay) while every step of
// every order allocates its JSON, so at full load the default spent about a
// fifth of the CPU collecting (make bench: 1.6 ms of CPU per order against
// 1.25 ms at 400). The price is a heap up to five times the live one,
// about 110 MB at a thousand orders a second. GOGC and GOMEMLIMIT, if set,
// are the runtime's, as always.
const gcPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cupcake-factory:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	f := function.New()
	if err := f.Start(ctx, nil); err != nil {
		return err
	}
	app := f.App()
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.Stop(stopCtx); err != nil {
			app.Log.Error("stop", "error", err)
		}
	}()

	authn, err := auth.New(app.Config.AuthOptions(), app.Log)
	if err != nil {
		return err
	}
	go authn.Warm(ctx)

	api := httpapi.New(app, app.Store, app.Hub, app.Metrics, app.Log)
	api.KitchenMode = app.Config.KitchenMode
	api.Auth = authn
	api.MaxSSEClients = app.Config.MaxSSEClients
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: the notification stream is long-lived; it sets a
		// deadline on each of its writes instead.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", app.Config.ListenAddress)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", app.Config.ListenAddress, err)
	}
	app.Log.Info("listening", "address", "http://"+ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	app.Log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
