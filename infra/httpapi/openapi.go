package httpapi

import _ "embed"

// OpenAPI is the OpenAPI 3 description of this HTTP API, served at GET
// /openapi.json: every route the server registers, its bodies, answers and
// errors, and who may use it (security and x-roles, as the role table of
// infra/auth says). It is the one source: openapi_test.go fails when a
// route is registered but not described or described but not registered,
// or when its roles differ from the role table; the e2e suite validates the
// binary's answers against it and schemathesis fuzzes the live app with it
// (make test-api).
//
//go:embed openapi.json
var OpenAPI []byte
