package bolt_test

import (
	"testing"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/infra/bolt"
	"github.com/cupcake-factory/cupcake-factory/infra/storetest"
)

// TestStoreConformance runs the store conformance suite against the
// embedded store, a new file for each test. Reopening opens the same file
// again, as a restarted process does.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (domain.Store, func() domain.Store) {
		dir := t.TempDir()
		open := func() domain.Store {
			t.Helper()
			s, err := bolt.Open(dir)
			if err != nil {
				t.Fatalf("open embedded store: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
		return open(), open
	})
}
