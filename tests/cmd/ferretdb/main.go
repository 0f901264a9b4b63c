// Command ferretdb runs FerretDB (a MongoDB wire-protocol server, SQLite
// underneath) for trying cupcake-factory with MONGODB_URI by hand:
//
//	go run ./cmd/ferretdb -addr 127.0.0.1:27017 -dir ./ferretdb-data
//	MONGODB_URI=mongodb://127.0.0.1:27017/ go run ../cmd/cupcake-factory
//
// Clients connect to -addr through the test harness's proxy, which runs
// write commands one at a time: FerretDB on its own loses concurrent updates
// of one document. It is a test tool, not for production: see the package
// ferret docs for what FerretDB does differently from MongoDB.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/ferret"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("dir", "", "directory for the SQLite files (default: a temporary one, removed at exit)")
	verbose := flag.Bool("v", false, "log FerretDB's info messages")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s, err := ferret.Run(ctx, ferret.Options{Addr: *addr, Dir: *dir, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	fmt.Println("FerretDB listening behind its proxy; MONGODB_URI=" + s.URI)
	log.Info("FerretDB's own address, without the proxy", slog.String("uri", s.DirectURI))
	<-ctx.Done()
	s.Close()
}
