# kvstore — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO       ?= go
BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X kvstore.dev/kvstore/internal/server.Version=$(VERSION)
FUZZTIME ?= 60s

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the server into bin/kvstore and the CLI into bin/kvctl (static).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kvstore ./cmd/server
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/kvctl ./cmd/kvctl

.PHONY: run
run: build ## Run the server on embedded defaults: data in ./data, API on 127.0.0.1:8080.
	$(BIN)/kvstore --listen 127.0.0.1:8080 --log-format text

## Tools, pinned and built from the Go module proxy into bin/ (nothing is
## downloaded as a binary).
CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)

$(CONTROLLER_GEN):
	GOBIN=$(BIN)/.gobin-controller-gen $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(BIN)/.gobin-controller-gen/controller-gen $@ && rm -rf $(BIN)/.gobin-controller-gen

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen (pinned) into bin/.

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD (config/crd/bases), RBAC role (config/rbac/role.yaml) and their copies in the Helm chart.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./internal/controller/..." output:crd:artifacts:config=config/crd/bases
	$(GO) run ./hack/chartgen

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate api/v1/zz_generated.deepcopy.go.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

## Kubernetes: the operator (kubebuilder layout). KUBECTL defaults to a
## kubectl on PATH, else the one hack/envtest-bins.sh builds.
KUBECTL ?= $(shell command -v kubectl 2>/dev/null || echo $(BIN)/k8s/1.37.2-linux-amd64/kubectl)
OPERATOR_IMAGE ?= kvstore/operator:local

.PHONY: build-operator
build-operator: ## Build the operator into bin/kvstore-operator (static).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/kvstore-operator ./cmd/operator

.PHONY: run-operator
run-operator: build-operator ## Run the operator against the current kubeconfig's cluster (no leader election).
	$(BIN)/kvstore-operator --leader-elect=false --log-format text --metrics-bind-address 127.0.0.1:8082 --health-probe-bind-address 127.0.0.1:8083

.PHONY: install
install: ## Install the KVStore CRD into the current kubeconfig's cluster.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the KVStore CRD (and with it every KVStore; PVCs stay).
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: docker-build
docker-build: ## Build the server and operator images offline (hack/images.sh --operator).
	OPERATOR_IMAGE=$(OPERATOR_IMAGE) hack/images.sh --operator

.PHONY: deploy
deploy: ## Deploy the operator, its CRD and RBAC (kubectl apply -k config/default).
	$(KUBECTL) apply --server-side -k config/default

.PHONY: undeploy
undeploy: ## Remove what deploy created (KVStores and their children go too; PVCs stay).
	$(KUBECTL) delete --ignore-not-found -k config/default

.PHONY: helm
helm: ## Install helm (pinned in hack/install-helm.sh, built from the Go module proxy) into bin/helm.
	hack/install-helm.sh >/dev/null

.PHONY: chart
chart: ## Regenerate the Helm chart's CRD and RBAC rules from config/, and its README values table (go run ./hack/chartgen --check only reports).
	$(GO) run ./hack/chartgen

.PHONY: verify-generated
verify-generated: ## Fail when make manifests generate would change a generated file.
	hack/verify-generated.sh

.PHONY: lint
lint: ## gofmt and go vet, for both modules.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

ARTIFACTS ?= $(CURDIR)/tmp/test-artifacts

.PHONY: test-deps
test-deps: ## Install what the tests need: Debian's chromium; kube-apiserver, etcd, kubectl, helm, SeaweedFS's weed (the backup tests' S3 server) and Prometheus's promtool (the alert rule tests) built from the Go module proxy.
	hack/install-chromium.sh
	hack/envtest-bins.sh >/dev/null
	hack/install-helm.sh >/dev/null
	hack/install-weed.sh >/dev/null
	hack/install-promtool.sh >/dev/null

.PHONY: test
test: lint test-deps verify-generated build build-operator ## Install what the tests need, build the binaries once, then run every test (unit, envtest, test/e2e, fuzz seeds), then the suites on the local Kubernetes (test-kube).
	KVSTORE_SERVER_BIN=$(BIN)/kvstore KVSTORE_OPERATOR_BIN=$(BIN)/kvstore-operator KVSTORE_KVCTL_BIN=$(BIN)/kvctl \
	KUBEBUILDER_ASSETS="$$(hack/envtest-bins.sh)" HELM="$$(hack/install-helm.sh)" KVSTORE_WEED_BIN="$$(hack/install-weed.sh)" KVSTORE_PROMTOOL_BIN="$$(hack/install-promtool.sh)" KVSTORE_TEST_ARTIFACTS=$(ARTIFACTS) \
	$(GO) test -race -count=1 -timeout 30m ./...
	cd bench && $(GO) test -count=1 ./...
	cd hack/envtest && KUBEBUILDER_ASSETS="$$(../envtest-bins.sh)" $(GO) test -count=1 .
	$(MAKE) --no-print-directory test-kube

.PHONY: test-kube
test-kube: test-deps ## The suites on the local Kubernetes (test/e2e/kube, test/e2e/ingress; build tag kube): builds the cluster's programs and images, brings it up, runs them; the last step of make test (docs/e2e.md).
	hack/kube/bins.sh >/dev/null
	hack/kube/images.sh >/dev/null
	HELM="$$(hack/install-helm.sh)" KVSTORE_TEST_ARTIFACTS=$(ARTIFACTS) \
	$(GO) test -tags kube -count=1 -timeout 60m -v ./test/e2e/kube/ ./test/e2e/ingress/

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 60s).
	$(GO) test -run '^$$' -fuzz '^FuzzValidateKey$$' -fuzztime $(FUZZTIME) ./internal/store
	$(GO) test -run '^$$' -fuzz '^FuzzCommandDecode$$' -fuzztime $(FUZZTIME) ./internal/store
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./internal/store
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzMembers$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzList$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzWatch$$' -fuzztime $(FUZZTIME) ./internal/httpapi

.PHONY: bench
bench: ## Benchmarks: kvstore vs etcd vs bare HTTP (one node and three), nginx vs direct in the compose stack, the operator, PUT throughput during a backup; writes docs/benchmarks.md.
	hack/bench.sh
	hack/bench-compose.sh
	hack/bench-operator.sh
	hack/bench-cluster.sh
	hack/bench-backup.sh

.PHONY: e2e-up
e2e-up: ## Bring up the local single-node Kubernetes cluster (hack/kube/, docs/e2e.md); prints its kubeconfig.
	hack/kube/up.sh

.PHONY: e2e-down
e2e-down: ## Take the local cluster down and remove its processes, mounts, netns, veth and state.
	hack/kube/down.sh

.PHONY: clean
clean: ## Remove build outputs (keeps ./data).
	rm -rf $(BIN)
