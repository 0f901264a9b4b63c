package events

import _ "embed"

// AsyncAPI is the AsyncAPI 3 document of the events: every topic of the
// pipeline (as channels), every event type (as messages, named by type) and
// the JSON Schema of each type's data and attributes. asyncapi_test.go
// checks it against Pipeline; the Kafka suite validates every record the
// system produces against it (tests/internal/asyncapi).
//
//go:embed asyncapi.json
var AsyncAPI []byte
