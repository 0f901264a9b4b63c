// Package functions builds the pipeline's functions from events.Pipeline:
// one handler per row, by the function's name.
package functions

import (
	"fmt"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/creditvalidated"
	"github.com/cupcake-factory/cupcake-factory/functions/dispatch"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
	"github.com/cupcake-factory/cupcake-factory/functions/ordercreated"
)

// New returns the handler of a pipeline step; auto says whether the kitchen
// runs by itself.
func New(step events.Step, s domain.Store, auto bool) (dispatch.Handler, error) {
	switch {
	case step.Function == events.FuncOrderCreated:
		return ordercreated.New(s).Handle, nil
	case step.Function == events.FuncCreditValidated:
		return creditvalidated.New(s, auto).Handle, nil
	case step.Records != "":
		return kitchen.New(step, s, auto).Handle, nil
	}
	return nil, fmt.Errorf("no implementation of function %q", step.Function)
}
