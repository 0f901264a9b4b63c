// Package tests holds the tests that need heavy tooling the product must not
// depend on: Kafka brokers (Apache Kafka itself, run from Maven Central's jars,
// and kfake for quick runs), a MongoDB wire-protocol server
// (FerretDB), Knative's and compose-go's types, and the kn func scaffold.
// It is its own module, so none of that enters the product's go.mod or binary.
package tests
