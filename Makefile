# cupcake-factory. `make run` starts the whole system; `make test` runs every test.
GO      ?= go
BIN     ?= bin/cupcake-factory

.PHONY: run build test test-unit test-integration test-browser bench fuzz vet

run: ## run all six functions, the REST API and the UI on 127.0.0.1:8080
	$(GO) run ./cmd/cupcake-factory

build: ## build the runner binary into bin/
	$(GO) build -o $(BIN) ./cmd/cupcake-factory

test: vet test-unit test-integration test-browser ## every test

vet:
	$(GO) vet ./...

test-unit: ## unit tests and the end-to-end test of the product module
	$(GO) test -count=1 ./...

test-integration: ## tests with real brokers, stores, the kn func scaffold and the manifests
	cd tests && $(GO) test -count=1 -timeout 20m ./...

test-browser: ## the web UI in Debian's Chromium via playwright-core
	bash tests/browser/run.sh

fuzz: ## run each fuzz target for a while
	$(GO) test ./events -run '^$$' -fuzz FuzzDecodeData -fuzztime 30s
	$(GO) test ./events -run '^$$' -fuzz FuzzValidateOrder -fuzztime 30s
