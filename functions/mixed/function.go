// Package mixed is the mixed function: the mixer has mixed an order; it is recorded, the baker is told, and in
// auto mode the order goes on to baking (com.cupcakes.order.baked).
package mixed

import (
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
)

// Step is what the mixed function records and where it hands the order on.
var Step = kitchen.Step{
	Function: events.FuncMixed,
	Records:  events.StatusMixed,
	Next:     events.TypeBaked,
	NextBy:   "auto-baker",
}

// New returns the function; auto says whether the kitchen runs by itself.
func New(s kitchen.Store, n kitchen.Notifier, auto bool) *kitchen.Station {
	return kitchen.New(Step, s, n, auto)
}
