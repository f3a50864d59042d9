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
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the server into bin/kvstore (static).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kvstore ./cmd/server

.PHONY: run
run: build ## Run the server on embedded defaults: data in ./data, API on 127.0.0.1:8080.
	$(BIN)/kvstore --listen 127.0.0.1:8080 --log-format text

.PHONY: lint
lint: ## gofmt and go vet, for both modules.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

ARTIFACTS ?= $(CURDIR)/tmp/test-artifacts

.PHONY: test-deps
test-deps: ## Install what the tests need: Debian's chromium (the console's browser test).
	hack/install-chromium.sh

.PHONY: test
test: lint test-deps ## Install what the tests need, then run every test (unit, black-box, browser, compose, fuzz seeds).
	KVSTORE_TEST_ARTIFACTS=$(ARTIFACTS) $(GO) test -race -count=1 -timeout 30m ./...
	cd bench && $(GO) test -count=1 ./...

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 60s).
	$(GO) test -run '^$$' -fuzz '^FuzzValidateKey$$' -fuzztime $(FUZZTIME) ./internal/store
	$(GO) test -run '^$$' -fuzz '^FuzzCommandDecode$$' -fuzztime $(FUZZTIME) ./internal/store
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./internal/httpapi

.PHONY: bench
bench: ## Benchmarks: kvstore vs etcd vs bare HTTP, and nginx vs direct in the compose stack; writes docs/benchmarks.md.
	hack/bench.sh
	hack/bench-compose.sh

.PHONY: clean
clean: ## Remove build outputs (keeps ./data).
	rm -rf $(BIN)
