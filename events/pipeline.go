package events

import "slices"

// Step is one function of the pipeline, as Watermill's router.AddHandler
// states a handler: its name, the event type it takes, the topic that type
// travels on and the types it may answer with. Kitchen steps also name the
// order state they record, the station that does them, the notification that
// tells that station of new work, and the REST path a station reports on.
type Step struct {
	Function string   // name, as in FUNCTIONS and the manifests
	Takes    string   // the event type it handles
	Also     []string // other event types it handles, on the same topic
	Topic    string   // the default Kafka topic of that type
	Replies  []string // the event types it may answer with besides handing on (see RepliesOf)

	Records string // kitchen: the order state it records
	Station string // kitchen: who does the step (?station= of the notifications)
	Inform  string // kitchen: the notification telling Station of work waiting
	Route   string // kitchen: POST /api/v1/order/<Route> reports the step
}

// Pipeline is the one statement of the pipeline's shape, in flow order.
// Routing, Kafka bindings, configuration defaults, the live notifications'
// station queues, the REST step routes, the roles, the web UI's boards and
// the order's state machine derive from it when they are used, and the
// documents and deployment manifests are generated from it (make generate).
// A new kitchen step is a new row here; a new kind of function is a row and
// a package under functions/.
var Pipeline = []Step{
	{Function: FuncOrderCreated, Takes: TypeOrderCreated, Also: []string{TypeCancelRequested}, Topic: TopicOrderRequests,
		Replies: []string{TypeCreditValidated, TypeCancelled}},
	{Function: FuncCreditValidated, Takes: TypeCreditValidated, Topic: TopicOrderValidations,
		Replies: []string{TypeCancelled}},
	{Function: FuncMixed, Takes: TypeMixed, Topic: TopicReadyToBake,
		Records: StatusMixed, Station: "mixer", Inform: "InformNewOrderToMix", Route: "mix"},
	{Function: FuncBaked, Takes: TypeBaked, Topic: TopicReadyToDecorate,
		Records: StatusBaked, Station: "baker", Inform: "InformNewOrderToBake", Route: "bake"},
	{Function: FuncDecorated, Takes: TypeDecorated, Topic: TopicReadyToPackage,
		Records: StatusDecorated, Station: "decorator", Inform: "InformNewOrderToDecorate", Route: "decorate"},
	{Function: FuncPackaged, Takes: TypePackaged, Topic: TopicReadyToShip,
		Records: StatusPackaged, Station: "packaging", Inform: "InformNewOrderToPackage", Route: "box"},
}

// After returns the step that follows s in the kitchen: the next row, if
// it is a kitchen step. The approval hands an order on to the first kitchen
// step, each kitchen step to the next; after the last the order ships.
func After(s Step) (Step, bool) {
	i := slices.IndexFunc(Pipeline, func(r Step) bool { return r.Function == s.Function })
	if i < 0 || i+1 == len(Pipeline) || Pipeline[i+1].Records == "" {
		return Step{}, false
	}
	return Pipeline[i+1], true
}

// RepliesOf lists every event type s may answer with: the type of the step
// it hands on to (After), shipped after the last kitchen step, then its own
// Replies.
func RepliesOf(s Step) []string {
	var out []string
	if next, ok := After(s); ok {
		out = append(out, next.Takes)
	} else if s.Records != "" {
		out = append(out, TypeShipped)
	}
	return append(out, s.Replies...)
}

// Kitchen returns the kitchen steps, in the order an order passes them.
// Like everything derived from Pipeline, it reads the table when called.
func Kitchen() []Step {
	out := make([]Step, 0, len(Pipeline))
	for _, s := range Pipeline {
		if s.Records != "" {
			out = append(out, s)
		}
	}
	return out
}

// Statuses lists every order state in flow order: created, approved, the
// states the kitchen steps record, shipped, and the two ends unshipped.
func Statuses() []string {
	out := []string{StatusCreated, StatusApproved}
	for _, s := range Kitchen() {
		out = append(out, s.Records)
	}
	return append(out, StatusShipped, StatusCancelled, StatusFailed)
}

// ValidStatus reports whether s is an order state of the contract.
func ValidStatus(s string) bool { return slices.Contains(Statuses(), s) }

// FunctionNames returns the function names in pipeline order.
func FunctionNames() []string {
	names := make([]string, len(Pipeline))
	for i, s := range Pipeline {
		names[i] = s.Function
	}
	return names
}

// StepFor returns the step that handles events of type t.
func StepFor(t string) (Step, bool) {
	i := slices.IndexFunc(Pipeline, func(s Step) bool { return s.Takes == t || slices.Contains(s.Also, t) })
	if i < 0 {
		return Step{}, false
	}
	return Pipeline[i], true
}

// StepNamed returns the step of the function called name.
func StepNamed(name string) (Step, bool) {
	i := slices.IndexFunc(Pipeline, func(s Step) bool { return s.Function == name })
	if i < 0 {
		return Step{}, false
	}
	return Pipeline[i], true
}

// TopicOf returns the default topic of events of type t: the topic of the
// step that takes it, or the updates topic for notifications.
func TopicOf(t string) string {
	if s, ok := StepFor(t); ok {
		return s.Topic
	}
	return TopicOrderUpdates
}

// WaitingFor returns the kitchen step an order in state status waits for:
// the first kitchen step waits on approved orders, each later one on the
// state its predecessor records.
func WaitingFor(status string) (Step, bool) {
	prev := StatusApproved
	for _, s := range Pipeline { // not Kitchen(): the hub asks per notification, without a copy
		if s.Records == "" {
			continue
		}
		if status == prev {
			return s, true
		}
		prev = s.Records
	}
	return Step{}, false
}

// Types lists the event types s handles: Takes, then Also.
func (s Step) Types() []string { return append([]string{s.Takes}, s.Also...) }

// AutoBy is who does a kitchen step in auto mode.
func (s Step) AutoBy() string { return "auto-" + s.Station }
