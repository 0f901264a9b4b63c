// Package deploy checks the deployment descriptions without a cluster or a
// Docker engine: every Knative manifest under infra/knative is decoded
// strictly into Knative's own Go types and passes their SetDefaults and
// Validate; docker-compose.yml is loaded with compose-go; func.yaml is
// decoded strictly and checked against what `func run` does with it and
// against the Service in infra/knative/func that gives the kn func service
// its cluster settings. On top of that the tests check the wiring: which topic
// feeds which function, where each reply type goes, which image and
// FUNCTIONS each service runs.
package deploy
