// Package domain holds what the functions and the adapters agree on: the
// records the store keeps (customers, orders, their outboxes), the menu and
// the limits of an order, the rules of an order's life (its state machine,
// credit), and the kinds of error that decide ACK, retry and HTTP status. It
// knows events by type and data; the relay makes them CloudEvents.
package domain

import (
	"errors"
	"fmt"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Kind classifies an error for the code that has to act on it.
type Kind string

const (
	// KindInvalid: the input is wrong; retrying will not help (HTTP 400).
	KindInvalid Kind = "invalid"
	// KindNotFound: the thing named does not exist (HTTP 404).
	KindNotFound Kind = "not_found"
	// KindConflict: the input does not fit the current state (HTTP 409).
	KindConflict Kind = "conflict"
	// KindInternal: the system failed; the same input may succeed later.
	KindInternal Kind = "internal"
)

// Error is an error with a kind and a message meant for the caller.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error of kind k.
func Errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err: KindInvalid for an *events.ValidationError,
// the kind of the first *Error it wraps, or KindInternal for anything else.
func KindOf(err error) Kind {
	var e *Error
	switch {
	case events.IsValidation(err):
		return KindInvalid
	case errors.As(err, &e):
		return e.Kind
	}
	return KindInternal
}

// Permanent reports whether retrying err cannot succeed.
func Permanent(err error) bool {
	switch KindOf(err) {
	case KindInvalid, KindNotFound, KindConflict:
		return true
	}
	return false
}
