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
	byID map[string]domain.Order
	ring []string // ids in the order they came in, for eviction
	next int
}

func newOrderCache() *orderCache {
	return &orderCache{byID: make(map[string]domain.Order, cacheSize), ring: make([]string, cacheSize)}
}

func (c *orderCache) get(id string) (domain.Order, bool) {
	c.mu.Lock()
	o, ok := c.byID[id]
	c.mu.Unlock()
	if !ok {
		return o, false
	}
	return own(o), true
}

// put stores orders the writer has just committed.
func (c *orderCache) put(orders map[string]domain.Order) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, o := range orders {
		if _, ok := c.byID[id]; !ok {
			if old := c.ring[c.next]; old != "" {
				delete(c.byID, old)
			}
			c.ring[c.next] = id
			c.next = (c.next + 1) % len(c.ring)
		}
		c.byID[id] = o
	}
}

// own returns o with slices of its own.
func own(o domain.Order) domain.Order {
	o.Items, o.History, o.Outbox = slices.Clone(o.Items), slices.Clone(o.History), slices.Clone(o.Outbox)
	return o
}
