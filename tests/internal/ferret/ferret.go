// Package ferret starts a MongoDB wire-protocol server for tests: FerretDB v1
// embedded, with its SQLite handler in a temporary directory, behind a small
// proxy of our own (proxy.go) on a free 127.0.0.1 port.
//
// FerretDB is good for functional tests of a MongoDB store: CRUD, $inc, $push,
// $pull, conditional updates, unique indexes and duplicate-key errors work as
// in MongoDB. It has no transactions and no positional updates.
//
// On its own, FerretDB v1.24.2 also loses concurrent updates of one
// document: update and findAndModify read the document with a plain SELECT,
// apply the operators in Go and write it back in another transaction,
// without checking the filter again. MongoDB applies each single-document
// write atomically, and the stores rely on that. The proxy restores it: it
// forwards bytes both ways and lets one write command (insert, update,
// delete, findAndModify) run at a time, from its request until its reply;
// reads pass through. Through the proxy (Server.URI, what Start returns),
// concurrent conditional updates come out exact, so tests can prove
// single-document atomicity on a MongoDB-protocol store (see
// TestProxyKeepsSingleDocumentUpdatesAtomic). Server.DirectURI is
// FerretDB's own address, without that guarantee.
//
// The URIs name no compressors, and must not: FerretDB v1 does not offer
// compression, so the driver does not compress, and the proxy, which could
// not tell a compressed write from a read, drops a connection that does.
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
	"strings"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Server is a running FerretDB.
type Server struct {
	// URI is the MongoDB connection string to use
	// (mongodb://127.0.0.1:PORT/): the proxy, which runs write commands one
	// at a time so that concurrent updates of one document are not lost.
	URI string
	// DirectURI is FerretDB's own address, without the proxy: concurrent
	// updates of one document through it can be lost. It is there to show
	// that, not to test a store with.
	DirectURI string

	proxy  *proxy
	cancel context.CancelFunc
	done   chan struct{}
}

// Options tune a server; the zero value is fine.
type Options struct {
	// Addr is the TCP address clients connect to (the proxy's); "" means a
	// free 127.0.0.1 port. FerretDB itself listens on a free 127.0.0.1 port.
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
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
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
	s := &Server{DirectURI: f.MongoDBURI(), cancel: cancel, done: done}
	target := hostOf(s.DirectURI)
	if err := s.wait(ctx, target); err != nil {
		s.Close()
		return nil, err
	}
	s.proxy, err = startProxy(ctx, addr, target, logger)
	if err != nil {
		s.Close()
		return nil, err
	}
	// No compressors: see the package doc.
	s.URI = "mongodb://" + s.proxy.ln.Addr().String() + "/"
	return s, nil
}

// hostOf returns HOST:PORT of a mongodb://HOST:PORT/ URI.
func hostOf(uri string) string {
	return strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
}

func (s *Server) wait(ctx context.Context, host string) error {
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

// Close stops the proxy and the server and removes its temporary directory.
func (s *Server) Close() {
	if s.proxy != nil {
		s.proxy.close()
	}
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// Start starts a server for the test and stops it when the test ends. It
// returns the MongoDB URI to connect to (mongodb://127.0.0.1:PORT/), the
// proxy's.
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
