// Package events is the wire: the CloudEvent types, their Kafka topics, the
// JSON payloads and what their fields must look like, the CloudEvents
// helpers, and the pipeline's table (Pipeline). Everything here is named in
// shared/CONTRACT.md; change a name and you break a user. What an order may
// hold and what happens to it (the menu, prices, limits, the state machine)
// is the domain's.
package events

// Event types.
const (
	TypeOrderCreated    = "com.cupcakes.order.created"
	TypeCreditValidated = "com.cupcakes.order.credit-validated"
	TypeMixed           = "com.cupcakes.order.mixed"
	TypeBaked           = "com.cupcakes.order.baked"
	TypeDecorated       = "com.cupcakes.order.decorated"
	TypePackaged        = "com.cupcakes.order.packaged"
	TypeShipped         = "com.cupcakes.order.shipped"
	TypeCancelled       = "com.cupcakes.order.cancelled"
	TypeFailed          = "com.cupcakes.order.failed"
	// TypeCancelRequested is a customer's request to cancel an order,
	// taken by order-created on the orders' topic.
	TypeCancelRequested = "com.cupcakes.order.cancel-requested"
	// TypeStatusChanged is a notification published on the updates topic after
	// every state change, so that a separate API/UI service can tell browsers.
	TypeStatusChanged = "com.cupcakes.order.status-changed"
)

// Extension attribute names.
const (
	// ExtPartitionKey carries the order id; it becomes the Kafka record key.
	ExtPartitionKey = "partitionkey"
)

// Default Kafka topics.
const (
	TopicOrderRequests    = "orderrequests"
	TopicOrderValidations = "ordervalidations"
	TopicReadyToBake      = "readytobake"
	TopicReadyToDecorate  = "readytodecorate"
	TopicReadyToPackage   = "readytopackage"
	TopicReadyToShip      = "readytoship"
	TopicOrderUpdates     = "orderupdates"
	TopicDeadLetters      = "deadletters"
)

// Function names, as used in FUNCTIONS and in deployment manifests.
const (
	FuncOrderCreated    = "order-created"
	FuncCreditValidated = "credit-validated"
	FuncMixed           = "mixed"
	FuncBaked           = "baked"
	FuncDecorated       = "decorated"
	FuncPackaged        = "packaged"
)

// IsNotification reports whether t is a notification-only type (orderupdates).
func IsNotification(t string) bool {
	switch t {
	case TypeShipped, TypeCancelled, TypeFailed, TypeStatusChanged:
		return true
	}
	return false
}

// Cancellation reasons.
const (
	ReasonInsufficientCredit = "insufficient-credit"
	ReasonUnknownCustomer    = "unknown-customer"
	ReasonInvalidOrder       = "invalid-order"
	// ReasonCustomerCancelled is the reason of a cancel request that gives none.
	ReasonCustomerCancelled = "customer-cancelled"
)

// Order states.
const (
	StatusCreated   = "created"
	StatusApproved  = "approved"
	StatusMixed     = "mixed"
	StatusBaked     = "baked"
	StatusDecorated = "decorated"
	StatusPackaged  = "packaged"
	StatusShipped   = "shipped"
	StatusCancelled = "cancelled"
	StatusFailed    = "failed"
)
