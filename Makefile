# Ticketpulse build entry points; `make` alone lists them. CI runs `make test` (see .ci/run).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

SERVICES := ingest kpi escalation notify console
# Pinned generators and buf live here (scripts/tools.sh) and win over anything else on PATH.
TOOLS_BIN := $(CURDIR)/.bin
export PATH := $(TOOLS_BIN):$(PATH)
# Extra flags for tpdev, e.g. make run ARGS='-services escalation,notify'.
ARGS ?=

# The chaos run (docs/chaos.md): how long the load runs, its events per second, the mean time
# between faults, how long the system may take to settle, the seed (empty: a new one, printed)
# the fault kinds (all, or some of kill,pause,redis,nats,disk), the NATS nodes (1, or 3 as a
# cluster with R3 streams) and Redis (cluster: 3 masters and 3 replicas, or single).
CHAOS_DURATION ?= 5m
CHAOS_RATE ?= 200
CHAOS_INTERVAL ?= 15s
CHAOS_SETTLE ?= 2m
CHAOS_SEED ?=
CHAOS_FAULTS ?= all
CHAOS_NATS_NODES ?= 3
CHAOS_REDIS ?= cluster

# Every module of the workspace (the root holds none, so a bare ./... there matches nothing).
modules = $(shell go list -m -f '{{.Dir}}')

.PHONY: help build test run lint proto proto-check rules-check bench chaos clean tools

help: ## List the targets.
	@echo "Usage: make <target>"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build the five service binaries into bin/.
	go build -o bin/ $(foreach s,$(SERVICES),./services/$(s)/cmd/$(s))

test: ## Install redis-server and promtool if missing, check generated code and the alert rules, then go vet and go test (race detector, shuffled, uncached) every module.
	bash scripts/ensure-deps.sh
	$(MAKE) proto-check
	$(MAKE) rules-check
	@for dir in $(modules); do \
		mod=$${dir#$(CURDIR)/}; \
		echo "==> $$mod: go vet, go test"; \
		if ! (cd "$$dir" && go vet ./... && go test -race -count=1 -shuffle=on -timeout 5m ./...); then \
			echo "FAIL: module $$mod" >&2; exit 1; \
		fi; \
	done
	@echo "ok: every module passed"

run: ## Run the whole stack locally (embedded NATS, redis-server, all services); Ctrl-C stops it.
	@if [[ -z "$${TICKETPULSE_REDIS_URL:-}" ]]; then bash scripts/ensure-deps.sh redis-server; fi
	@# Built, then run, rather than go run: go run exits 1 after an interrupt even when tpdev
	@# stopped everything cleanly, and the exit status should say whether it did.
	go build -o .run/bin/tpdev ./tools/tpdev
	.run/bin/tpdev $(ARGS)

lint: tools ## gofmt (must list no file), go vet every module, buf lint and buf format.
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [[ -n "$$unformatted" ]]; then echo "gofmt -l lists files to format with gofmt -w:" >&2; echo "$$unformatted" >&2; exit 1; fi
	@for dir in $(modules); do \
		mod=$${dir#$(CURDIR)/}; \
		(cd "$$dir" && go vet ./...) || { echo "FAIL: go vet in $$mod" >&2; exit 1; }; \
	done
	cd proto && buf lint
	cd proto && buf format -d --exit-code

proto: tools ## Regenerate the Go code in proto/ with the pinned buf and plugins.
	cd proto && buf generate

proto-check: tools ## Fail if the generated code in proto/ differs from what make proto writes, or is not committed.
	bash scripts/proto-check.sh

rules-check: ## Check deploy/prometheus (config and alert rules) and run the rules' unit tests, with promtool (scripts/ensure-deps.sh installs it).
	cd deploy/prometheus && promtool check config prometheus.yml && promtool test rules alerts_test.yml

bench: ## Run every module's Go benchmarks, then the load benchmark scripts/bench.sh when it exists.
	@for dir in $(modules); do \
		mod=$${dir#$(CURDIR)/}; \
		echo "==> $$mod: go test -bench"; \
		(cd "$$dir" && go test -run '^$$' -bench . -benchmem ./...) || { echo "FAIL: benchmarks of $$mod" >&2; exit 1; }; \
	done
	@if [[ -f scripts/bench.sh ]]; then bash scripts/bench.sh; else echo "no scripts/bench.sh: skipping the load benchmark"; fi

chaos: ## The long chaos run: every service under load while processes, Redis, NATS and the NATS disk fail; set CHAOS_DURATION (5m), CHAOS_RATE (200 events/s), CHAOS_INTERVAL (15s), CHAOS_SETTLE (2m), CHAOS_SEED, CHAOS_FAULTS (all), CHAOS_NATS_NODES (3), CHAOS_REDIS (cluster). Mounts a tmpfs when run as root.
	bash scripts/ensure-deps.sh redis-server
	cd e2e && TICKETPULSE_CHAOS_DURATION=$(CHAOS_DURATION) TICKETPULSE_CHAOS_RATE=$(CHAOS_RATE) \
		TICKETPULSE_CHAOS_INTERVAL=$(CHAOS_INTERVAL) TICKETPULSE_CHAOS_SETTLE=$(CHAOS_SETTLE) \
		TICKETPULSE_CHAOS_SEED=$(CHAOS_SEED) TICKETPULSE_CHAOS_FAULTS=$(CHAOS_FAULTS) \
		TICKETPULSE_CHAOS_NATS_NODES=$(CHAOS_NATS_NODES) TICKETPULSE_CHAOS_REDIS=$(CHAOS_REDIS) \
		go test -count=1 -v -timeout 60m -run '^TestChaos$$' ./chaos/

clean: ## Remove bin/, the local stack's state in .run/ (NATS store, Redis data) and the tools in .bin/.
	rm -rf bin .run .bin

tools: $(TOOLS_BIN)/.installed

$(TOOLS_BIN)/.installed: scripts/tools.sh
	bash scripts/tools.sh
	@touch $@
