// Package metrics keeps counters and writes them in the Prometheus text
// exposition format, enough for /metrics without a client library.
package metrics

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// Counters is a set of named counters with labels.
type Counters struct {
	mu     sync.Mutex
	help   map[string]string
	values map[string]map[string]float64 // name → rendered labels → value
}

// New returns an empty set.
func New() *Counters {
	return &Counters{help: map[string]string{}, values: map[string]map[string]float64{}}
}

// Describe sets the help text of a counter.
func (c *Counters) Describe(name, help string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.help[name] = help
}

// Add adds v to the counter name with labels given as key, value pairs.
func (c *Counters) Add(name string, v float64, labels ...string) {
	var b strings.Builder
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", labels[i], labels[i+1])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.values[name] == nil {
		c.values[name] = map[string]float64{}
	}
	c.values[name][b.String()] += v
}

// WriteTo writes every counter in the text format.
func (c *Counters) WriteTo(w io.Writer) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.values))
	for n := range c.values {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		if h := c.help[n]; h != "" {
			fmt.Fprintf(&b, "# HELP %s %s\n", n, h)
		}
		fmt.Fprintf(&b, "# TYPE %s counter\n", n)
		series := make([]string, 0, len(c.values[n]))
		for l := range c.values[n] {
			series = append(series, l)
		}
		sort.Strings(series)
		for _, l := range series {
			if l == "" {
				fmt.Fprintf(&b, "%s %g\n", n, c.values[n][l])
			} else {
				fmt.Fprintf(&b, "%s{%s} %g\n", n, l, c.values[n][l])
			}
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
