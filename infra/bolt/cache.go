package bolt

import (
	"slices"
	"sync"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// cacheSize is how many recently written orders stay decoded in memory:
// the orders in the works, each written and read a few times in a second.
const cacheSize = 4096

// orderCache keeps the orders the writer stored last, decoded, so that the
// next unit of work on an order, and the reads between, skip the JSON
// decoding that otherwise costs more than anything else per step. Only the
// writer fills it, after its transaction committed, so it never holds
// anything that is not on disk; readers never fill it, so a reader that
// decoded an older version cannot put it back. Entries are never changed
// in place; whoever takes one gets its own copy of the slices.
type orderCache struct {
	mu   sync.Mutex
	byID map[string]version
	ring []string // ids in the order they came in, for eviction
	next int
}

// version is an order as one write stored it. Every write the store makes
// gets a number of its own, larger than any before, so a number names one
// state of one order exactly, even after it left the cache and came back.
type version struct {
	order domain.Order
	n     uint64
}

func newOrderCache() *orderCache {
	return &orderCache{byID: make(map[string]version, cacheSize), ring: make([]string, cacheSize)}
}

// get returns a copy of a cached order and its version number.
func (c *orderCache) get(id string) (domain.Order, uint64, bool) {
	c.mu.Lock()
	v, ok := c.byID[id]
	c.mu.Unlock()
	if !ok {
		return domain.Order{}, 0, false
	}
	return own(v.order), v.n, true
}

// number returns the version number of a cached order, 0 if not cached.
func (c *orderCache) number(id string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id].n
}

// put stores orders the writer has just committed.
func (c *orderCache) put(orders map[string]version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, v := range orders {
		if _, ok := c.byID[id]; !ok {
			if old := c.ring[c.next]; old != "" {
				delete(c.byID, old)
			}
			c.ring[c.next] = id
			c.next = (c.next + 1) % len(c.ring)
		}
		c.byID[id] = v
	}
}

// own returns o with slices of its own.
func own(o domain.Order) domain.Order {
	o.Items, o.History, o.Outbox = slices.Clone(o.Items), slices.Clone(o.History), slices.Clone(o.Outbox)
	return o
}
