// Package baked is the baked function: the baker has baked an order; it is recorded, the decorator is told,
// and in auto mode the order goes on to decorating (com.cupcakes.order.decorated).
package baked

import (
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
)

// Step is what the baked function records and where it hands the order on.
var Step = kitchen.Step{
	Function: events.FuncBaked,
	Records:  events.StatusBaked,
	Next:     events.TypeDecorated,
	NextBy:   "auto-decorator",
}

// New returns the function; auto says whether the kitchen runs by itself.
func New(s kitchen.Store, n kitchen.Notifier, auto bool) *kitchen.Station {
	return kitchen.New(Step, s, n, auto)
}
