// Package packaged is the packaged function: packaging has boxed an order; it is recorded and the order ships,
// in either kitchen mode, with com.cupcakes.order.shipped as the reply.
package packaged

import (
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
)

// Step is what the packaged function records and where it hands the order on.
var Step = kitchen.Step{
	Function: events.FuncPackaged,
	Records:  events.StatusPackaged,
	Ships:    true,
}

// New returns the function; auto says whether the kitchen runs by itself.
func New(s kitchen.Store, n kitchen.Notifier, auto bool) *kitchen.Station {
	return kitchen.New(Step, s, n, auto)
}
