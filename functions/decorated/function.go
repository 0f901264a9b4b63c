// Package decorated is the decorated function: the decorator has decorated an order; it is recorded, packaging
// is told, and in auto mode the order goes on to packaging (com.cupcakes.order.packaged).
package decorated

import (
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
)

// Step is what the decorated function records and where it hands the order on.
var Step = kitchen.Step{
	Function: events.FuncDecorated,
	Records:  events.StatusDecorated,
	Next:     events.TypePackaged,
	NextBy:   "auto-packaging",
}

// New returns the function; auto says whether the kitchen runs by itself.
func New(s kitchen.Store, n kitchen.Notifier, auto bool) *kitchen.Station {
	return kitchen.New(Step, s, n, auto)
}
