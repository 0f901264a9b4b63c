// Package ferret starts a MongoDB wire-protocol server for tests: FerretDB v1
// embedded, with its SQLite handler in a temporary directory, on a free
// 127.0.0.1 port.
//
// FerretDB is good for functional tests of a MongoDB store: CRUD, $inc, $push,
// $pull, conditional updates, unique indexes and duplicate-key errors work as
// in MongoDB. It is not a proof of atomicity: it has no transactions, no
// positional updates, and concurrent updates of one document from a pooled
// client can lose writes (a read-modify-write in its SQLite handler), which
// real MongoDB never does. Concurrency safety is proven on the embedded store.
package ferret

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Server is a running FerretDB.
type Server struct {
	// URI is the MongoDB connection string of the server
	// (mongodb://127.0.0.1:PORT/).
	URI string

	cancel context.CancelFunc
	done   chan struct{}
}

// Options tune a server; the zero value is fine.
type Options struct {
	// Addr is the TCP address to listen on; "" means a free 127.0.0.1 port.
	Addr string
	// Dir keeps the SQLite files; "" means a new temporary directory that
	// Close removes.
	Dir string
	// Logger receives FerretDB's logs; nil discards everything below errors.
	Logger *slog.Logger
}

// Run starts a server and waits until it accepts connections.
func Run(ctx context.Context, opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	dir, removeDir := opts.Dir, func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "ferretdb-")
		if err != nil {
			return nil, err
		}
		dir, removeDir = d, func() { _ = os.RemoveAll(d) }
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		removeDir()
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		removeDir()
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		removeDir()
		return nil, fmt.Errorf("start FerretDB: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer removeDir()
		_ = f.Run(runCtx)
	}()
	// MongoDBURI waits for the listener to be bound.
	s := &Server{URI: f.MongoDBURI(), cancel: cancel, done: done}
	if err := s.wait(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) wait(ctx context.Context) error {
	host := s.URI[len("mongodb://"):]
	host = host[:len(host)-1] // trailing "/"
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", host)
		if err == nil {
			return c.Close()
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("FerretDB on %s did not start", host), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the server and removes its temporary directory.
func (s *Server) Close() {
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// Start starts a server for the test and stops it when the test ends. It
// returns the MongoDB URI to connect to (mongodb://127.0.0.1:PORT/).
// FERRETDB_LOG=1 in the environment shows FerretDB's debug log.
func Start(tb testing.TB) string {
	tb.Helper()
	opts := Options{Dir: tb.TempDir()}
	if os.Getenv("FERRETDB_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := Run(context.Background(), opts)
	if err != nil {
		tb.Fatalf("FerretDB: %v", err)
	}
	tb.Cleanup(s.Close)
	return s.URI
}
