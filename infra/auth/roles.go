// Package auth decides who may do what: it turns a bearer token (a static
// token from AUTH_TOKENS, or a JWT from OIDC_ISSUER) into roles, and one
// table says which roles may use each HTTP route and post each CloudEvent
// type. Without any token source configured everything is open, for local
// work, and a warning says so once.
package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Roles is a set of roles.
type Roles uint8

// The roles of the contract.
const (
	// Admin may do everything, including creating customers and changing
	// credit limits.
	Admin Roles = 1 << iota
	// Shop places and cancels orders (REST, or order.created and
	// order.cancel-requested on POST /) and reads.
	Shop
	// Staff reports kitchen steps and problems and reads.
	Staff
	// Events posts any contract event type on POST /: the platform
	// (Knative Eventing) delivering events.
	Events

	// AnyRole is every role: what a read needs.
	AnyRole = Admin | Shop | Staff | Events
)

var roleNames = []struct {
	role Roles
	name string
}{{Admin, "admin"}, {Shop, "shop"}, {Staff, "staff"}, {Events, "events"}}

// RoleNames lists the role names, as AUTH_TOKENS and the JWT roles claim
// spell them.
func RoleNames() []string {
	out := make([]string, len(roleNames))
	for i, r := range roleNames {
		out[i] = r.name
	}
	return out
}

// ParseRole returns the role named name.
func ParseRole(name string) (Roles, bool) {
	for _, r := range roleNames {
		if r.name == name {
			return r.role, true
		}
	}
	return 0, false
}

// Names lists the roles by name, in the order of RoleNames.
func (r Roles) Names() []string {
	out := []string{}
	for _, n := range roleNames {
		if r&n.role != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// String lists the roles by name ("admin,shop"), "none" for the empty set.
func (r Roles) String() string {
	var names []string
	for _, n := range roleNames {
		if r&n.role != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// Allows reports whether a caller holding r may do what needs one of need.
// Admin may do everything.
func (r Roles) Allows(need Roles) bool { return r&Admin != 0 || r&need != 0 }

// Access says who may use a route.
type Access struct {
	// Open routes need no token at all: probes, metrics, the API
	// description and the UI's own files.
	Open bool
	// Roles may use the route (admin always may).
	Roles Roles
}

var (
	open     = Access{Open: true}
	anyRole  = Access{Roles: AnyRole}
	admin    = Access{Roles: Admin}
	shop     = Access{Roles: Shop}
	staff    = Access{Roles: Staff}
	anyEvent = Access{Roles: AnyRole} // POST /: then by event type, see EventRoles
)

// routes is the table of who may use each route, keyed by the pattern the
// HTTP server registers it with; each kitchen step's report route is
// staff's (see RouteAccess). A route missing here cannot be registered, so
// a new route is decided on, not left open by accident.
var routes = map[string]Access{
	"POST /{$}":                         anyEvent,
	"GET /{$}":                          open,
	"GET /ui/{name}":                    open,
	"GET /api/v1/config":                open, // the UI needs it before sign-in; it tells the kitchen mode and that auth is on
	"GET /api/v1/me":                    anyRole,
	"GET /openapi.json":                 open,
	"GET /health/readiness":             open,
	"GET /health/liveness":              open,
	"GET /metrics":                      open,
	"POST /api/v1/customers":            admin,
	"GET /api/v1/customers/{id}":        anyRole,
	"PUT /api/v1/customers/{id}/credit": admin,
	"POST /api/v1/order":                shop,
	"GET /api/v1/order/{id}":            anyRole,
	"GET /api/v1/orders":                anyRole,
	"POST /api/v1/order/reporterror":    staff,
	"POST /api/v1/order/cancel":         shop,
	"GET /api/v1/notifications":         anyRole,
}

// eventRoles is the table of who may post each event type on POST /. The
// platform (events) may post every type; a shop may place orders; staff may
// report kitchen steps (every kitchen step's type: see EventRoles); a shop
// may cancel its orders.
// Verdicts (credit-validated) and notifications come only from the
// platform.
var eventRoles = map[string]Roles{
	events.TypeOrderCreated:    Shop | Events,
	events.TypeCancelRequested: Shop | Events,
	events.TypeCreditValidated: Events,
	events.TypeShipped:         Events,
	events.TypeCancelled:       Events,
	events.TypeFailed:          Events,
	events.TypeStatusChanged:   Events,
}

// RouteAccess returns who may use the route registered as pattern. ok is
// false for a pattern the table does not know.
func RouteAccess(pattern string) (a Access, ok bool) {
	if a, ok = routes[pattern]; ok {
		return a, true
	}
	for _, s := range events.Kitchen() {
		if pattern == KitchenRoute(s) {
			return staff, true
		}
	}
	return Access{}, false
}

// KitchenRoute is the pattern of the route a station reports step s on.
func KitchenRoute(s events.Step) string { return "POST /api/v1/order/" + s.Route }

// EventRoles returns who may post events of type t. A type the contract
// does not name is the platform's (and is refused later as unknown).
func EventRoles(t string) Roles {
	if r, ok := eventRoles[t]; ok {
		return r
	}
	if s, ok := events.StepFor(t); ok && s.Records != "" {
		return Staff | Events
	}
	return Events
}

// EventTypes lists the event types of the table, sorted.
func EventTypes() []string {
	out := make([]string, 0, len(eventRoles))
	for t := range eventRoles {
		out = append(out, t)
	}
	for _, s := range events.Kitchen() {
		out = append(out, s.Takes)
	}
	slices.Sort(out)
	return out
}

// describe says which roles may do something, for a 403's message.
func describe(need Roles) string {
	return fmt.Sprintf("needs one of the roles %s", (need | Admin).String())
}
