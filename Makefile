# cupcake-factory. `make run` starts the whole system; `make test` runs every test.
GO      ?= go
BIN     ?= bin/cupcake-factory
GOFMT   ?= $(shell $(GO) env GOROOT)/bin/gofmt

.PHONY: run build generate test test-unit test-integration test-browser test-api test-postman bench bench-replicas bench-sse fuzz vet

run: ## run all six functions, the REST API and the UI on 127.0.0.1:8080
	$(GO) run ./cmd/cupcake-factory

build: ## build the runner binary into bin/
	$(GO) build -o $(BIN) ./cmd/cupcake-factory

generate: ## write the files made from events.Pipeline (every *.tmpl: documents, the manual Postman collection, compose, manifests)
	$(GO) run ./cmd/generate

test: vet test-unit test-integration test-browser test-api test-postman ## every test

vet: ## go vet, and every Go file of both modules formatted as gofmt writes it
	$(GO) vet ./...
	@unformatted="$$(find . \( -name node_modules -o -name '.*' ! -name . \) -prune -o -name '*.go' -print | xargs $(GOFMT) -l)"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt -w these files:"; echo "$$unformatted"; exit 1; fi

test-unit: ## unit tests and the end-to-end test of the product module
	$(GO) test -count=1 ./...

# Apache Kafka's jars are fetched once by the tests themselves (mvn, cached under
# $XDG_CACHE_HOME/cupcake-factory). The replica scenario times a recovery (3 s), so it
# runs alone after the others, not beside their brokers' JVMs.
test-integration: ## tests with real brokers (Apache Kafka, FerretDB), the kn func scaffold and the manifests
	cd tests && $(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -v /replicas$$)
	cd tests && $(GO) test -count=1 -timeout 15m ./replicas/

test-browser: ## the web UI in Debian's Chromium via playwright-core
	bash tests/browser/run.sh

test-api: ## schemathesis fuzzes the live app from its OpenAPI document: no 5xx, every answer as documented
	GO="$(GO)" bash tests/api/run.sh

test-postman: ## newman runs the Postman collections against a fresh runner (the manual one in KITCHEN_MODE=manual)
	GO="$(GO)" bash tests/postman/run.sh

fuzz: ## run each fuzz target for a while
	$(GO) test ./events -run '^$$' -fuzz FuzzDecodeData -fuzztime 30s
	$(GO) test ./domain -run '^$$' -fuzz FuzzValidateOrder -fuzztime 30s

# ---- Deploy: Knative (kn func + kubectl) and docker compose -----------------
# make deploy REGISTRY=ghcr.io/you [FLAVOUR=source|broker] [KAFKA_BOOTSTRAP=host:port]
# Prerequisites and apply order: infra/knative/README.md.
REGISTRY        ?=
IMAGE           ?= $(if $(REGISTRY),$(REGISTRY)/cupcake-factory-runner:latest,cupcake-factory:local)
FLAVOUR         ?= source
KAFKA_BOOTSTRAP ?= my-cluster-kafka-bootstrap.kafka.svc:9092
# The cluster's service-account token issuer (kubectl get --raw /.well-known/openid-configuration).
OIDC_ISSUER     ?= https://kubernetes.default.svc.cluster.local
# role:token lines for docker compose and the Kubernetes Secret; made by
# `make auth-tokens`, kept out of git.
AUTH_TOKENS_FILE ?= secrets/auth-tokens
KUBECTL         ?= kubectl
KN              ?= kn
DOCKER          ?= docker
COMPOSE         ?= docker compose
KNATIVE_NS      := cupcake-factory
KNATIVE_DIR     := infra/knative
# Placeholders in the manifests, replaced when they are applied.
RENDER = sed -e 's|registry.invalid/cupcake-factory/runner:replace-me|$(IMAGE)|g' \
             -e 's|my-cluster-kafka-bootstrap.kafka.svc:9092|$(KAFKA_BOOTSTRAP)|g' \
             -e 's|OIDC_ISSUER: https://kubernetes.default.svc.cluster.local|OIDC_ISSUER: $(OIDC_ISSUER)|g'

.PHONY: image image-push deploy deploy-func undeploy auth-tokens auth-secret compose-up compose-down compose-logs test-deploy

auth-tokens: $(AUTH_TOKENS_FILE) ## a random bearer token per role in secrets/auth-tokens (kept if it exists)

$(AUTH_TOKENS_FILE):
	@mkdir -p $(dir $@) && umask 077 && : > $@.tmp && \
	for role in admin shop staff events; do \
	  echo "$$role:$$role-$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >> $@.tmp; \
	done && mv $@.tmp $@ && echo "wrote $@ (role:token lines; keep it secret)"

auth-secret: $(AUTH_TOKENS_FILE) ## create the Kubernetes Secret cupcake-factory-auth from secrets/auth-tokens, if absent
	@$(KUBECTL) -n $(KNATIVE_NS) get secret cupcake-factory-auth >/dev/null 2>&1 || \
	  $(KUBECTL) -n $(KNATIVE_NS) create secret generic cupcake-factory-auth --from-file=AUTH_TOKENS=$(AUTH_TOKENS_FILE)

image: ## build the runner image (API/UI and docker compose) from infra/Dockerfile
	$(DOCKER) build -f infra/Dockerfile -t $(IMAGE) .

image-push: image ## build and push the runner image to REGISTRY
	@test -n "$(REGISTRY)" || { echo "set REGISTRY, e.g. make image-push REGISTRY=ghcr.io/you"; exit 1; }
	$(DOCKER) push $(IMAGE)

deploy: ## deploy to Knative: base, the auth Secret, the functions and the API, then FLAVOUR (source|broker)
	@test -n "$(REGISTRY)" || { echo "set REGISTRY, e.g. make deploy REGISTRY=ghcr.io/you"; exit 1; }
	@test -d $(KNATIVE_DIR)/$(FLAVOUR) || { echo "FLAVOUR must be source or broker"; exit 1; }
	$(MAKE) image-push
	$(KUBECTL) apply -f $(KNATIVE_DIR)/base/00-namespace.yaml
	$(MAKE) auth-secret
	$(RENDER) $(KNATIVE_DIR)/base/10-config.yaml | $(KUBECTL) apply -f -
	$(RENDER) $(KNATIVE_DIR)/base/20-topics.yaml | $(KUBECTL) apply -f -
	$(KUBECTL) -n $(KNATIVE_NS) wait --for=condition=complete --timeout=5m job/create-topics
	for f in $(KNATIVE_DIR)/base/30-*.yaml $(KNATIVE_DIR)/base/40-*.yaml $(KNATIVE_DIR)/base/50-*.yaml $(KNATIVE_DIR)/$(FLAVOUR)/*.yaml; do \
	  echo "apply $$f"; \
	  $(RENDER) $$f | $(KUBECTL) apply -f - || exit 1; \
	done
	$(KUBECTL) -n $(KNATIVE_NS) wait --for=condition=Ready --timeout=5m ksvc --all

# kn func's host builder compiles the function in a scaffold module of its own
# (.func/build) whose go.mod pins func's versions of modules this one requires
# too, and runs a read-only `go build` there with nothing but the caller's
# environment (func.yaml's buildEnvs do not reach it): -mod=mod lets go settle
# them. README, "Deploy to Knative with kn func".
deploy-func: ## also deploy the kn func service cupcake-factory (all six in one; it cannot check tokens: cluster-local only)
	@test -n "$(REGISTRY)" || { echo "set REGISTRY, e.g. make deploy-func REGISTRY=ghcr.io/you"; exit 1; }
	GOFLAGS=-mod=mod $(KN) func deploy --registry $(REGISTRY) --builder host
	fimg=$$($(KUBECTL) -n $(KNATIVE_NS) get ksvc cupcake-factory -o jsonpath='{.spec.template.spec.containers[0].image}'); \
	test -n "$$fimg" || { echo "no image on ksvc cupcake-factory"; exit 1; }; \
	$(RENDER) -e "s|registry.invalid/cupcake-factory/function:replace-me|$$fimg|g" $(KNATIVE_DIR)/func/10-service.yaml | $(KUBECTL) apply -f -
	$(KUBECTL) -n $(KNATIVE_NS) wait --for=condition=Ready --timeout=5m ksvc/cupcake-factory

undeploy: ## remove everything deploy created (the whole cupcake-factory namespace)
	-$(KN) func delete --namespace $(KNATIVE_NS) cupcake-factory
	$(KUBECTL) delete namespace $(KNATIVE_NS) --ignore-not-found

compose-up: $(AUTH_TOKENS_FILE) ## run everything with docker compose (needs MONGO_EXPRESS_PASSWORD; tokens in secrets/auth-tokens)
	@test -n "$$MONGO_EXPRESS_PASSWORD" || { echo "export MONGO_EXPRESS_PASSWORD=... (the mongo-express login)"; exit 1; }
	$(COMPOSE) up -d --build --wait

compose-down: ## stop docker compose (data volumes are kept; add -v by hand to drop them)
	MONGO_EXPRESS_PASSWORD=$${MONGO_EXPRESS_PASSWORD:-unused} $(COMPOSE) down

compose-logs: ## follow the logs of the docker compose services
	MONGO_EXPRESS_PASSWORD=$${MONGO_EXPRESS_PASSWORD:-unused} $(COMPOSE) logs -f

test-deploy: ## check the Knative manifests, docker-compose.yml and func.yaml
	cd tests && $(GO) test -count=1 ./deploy/

bench: ## orders/s and e2e latency in-process and over Kafka (kfake, or BROKERS=host:port), against sarama's and bbolt's own best, and a growth run
	cd tests && $(GO) run ./cmd/bench $(if $(BROKERS),-brokers $(BROKERS))

bench-replicas: ## 1 and REPLICAS (3) replicas on Apache Kafka sharing FerretDB: orders/s, p99, MongoDB commands per order, dead letters, orders not ended
	cd tests && $(GO) run ./cmd/bench -only replicas -replicas $(or $(REPLICAS),3) -in-flight 32 -replica-orders $(or $(ORDERS),200) -replica-rate 2 -offer-for 10s

bench-sse: ## order latency and server memory with 2000 live notification clients, and 503 beyond MAX_SSE_CLIENTS
	ulimit -n 20000 2>/dev/null || ulimit -n "$$(ulimit -Hn)"; cd tests && $(GO) run ./cmd/ssebench -clients 2000 -orders 200

kafka: ## run Apache Kafka (the tests' version, from Maven Central) in the foreground with the contract topics
	cd tests && $(GO) run ./cmd/kafka
