# dsync-export. `make test` is the CI command; `make run` is the one-command local export.
# `make` alone prints the targets (help); lines starting with "## name:" document them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
GO ?= go
GOARCH_LAMBDA ?= arm64
VERSITYGW_VERSION := v1.8.0
BIN := $(CURDIR)/bin
VERSITYGW := $(BIN)/versitygw
NODE_TOOLS := internal/testenv/sfn/node
LAMBDA_BUILD = GOOS=linux GOARCH=$(GOARCH_LAMBDA) CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'

.PHONY: help s3 test vet fmt lint lint-go lint-deps lint-asl tools node-tools run bench soak athena-ddl fake clean \
	build build-ExportFunction build-VerifyFunction invoke-export invoke-verify

## help: list the targets and what they do (the default goal).
help:
	@awk -v seeds='$(SOAK_SEEDS)' -v arch='$(GOARCH_LAMBDA)' \
		'/^## / { gsub(/\$$\(SOAK_SEEDS\)/, seeds); gsub(/\$$\(GOARCH_LAMBDA\)/, arch) } \
		/^## [A-Za-z0-9_-]+:/ { sub(/^## /, ""); name = $$1; sub(/^[^:]*: */, ""); printf "  %-14s %s\n", substr(name, 1, length(name) - 1), $$0; next } \
		/^## / { sub(/^## /, ""); printf "  %-14s %s\n", "", $$0 }' $(MAKEFILE_LIST)

## tools: install the pinned test tools into ./bin (versitygw, an S3 server that checks SigV4; the Lambda RIE).
tools: $(VERSITYGW) $(BIN)/aws-lambda-rie

# The Lambda Runtime Interface Emulator pinned by go.mod's tool directive (internal/testenv/rie reuses it while newer than go.mod).
$(BIN)/aws-lambda-rie: go.mod
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie

$(VERSITYGW):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) GOFLAGS=-mod=mod $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

## node-tools: npm ci the tools pinned in internal/testenv/sfn/node (aws-local-stepfunctions, the local
## Step Functions interpreter; asl-validator) when the lockfile is newer; needs Node.js 20+ and npm.
node-tools: $(NODE_TOOLS)/node_modules/.package-lock.json

# npm writes node_modules/.package-lock.json last: reinstall when the lockfile is newer.
$(NODE_TOOLS)/node_modules/.package-lock.json: $(NODE_TOOLS)/package-lock.json
	npm ci --no-audit --no-fund --prefix $(NODE_TOOLS)
	@touch $@

# The longest test packages first: go test runs packages in this order, two at a time on 2 cores, so the longest
# ones no longer start last and run alone.
TEST_FIRST := ./pkg/export ./internal/testenv/e2e ./internal/testenv/soak ./pkg/parquetfile ./pkg/verify

## test: vet, then every test with the race detector (CI runs this).
test: tools node-tools
	$(GO) vet ./...
	VERSITYGW_BIN=$(VERSITYGW) $(GO) test -race -count=1 -timeout 20m $(TEST_FIRST) ./...

## vet: go vet ./...
vet:
	$(GO) vet ./...

## fmt: gofmt every Go file.
fmt:
	gofmt -w $$(git ls-files '*.go')

## lint: formatting, vet, staticcheck (pinned in go.mod), tidy go.mod, the SAM template (cfn-lint),
## no test code in the Lambda builds (lint-deps), and the state machine's ASL (lint-asl).
lint: lint-go
	cfn-lint template.yaml

## lint-go: everything make lint checks but the SAM template (cfn-lint), for a machine without cfn-lint.
lint-go: lint-deps lint-asl
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: run make fmt'; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff

## lint-deps: fail if the Lambda build (lambda.norpc, linux/$(GOARCH_LAMBDA)) of a function links a test
## harness (workostest, awstest, rie, snapshottest) or testing; names the import chain.
lint-deps:
	GO=$(GO) GOARCH_LAMBDA=$(GOARCH_LAMBDA) .ci/lambda-deps ./functions/export ./functions/verify

## lint-asl: validate the ASL definition of template.yaml's ExportStateMachine with asl-validator
## (go run ./cmd/statemachine writes it to bin/statemachine.json, with placeholder ARNs).
lint-asl: node-tools
	@mkdir -p $(BIN)
	$(GO) run ./cmd/statemachine > $(BIN)/statemachine.json
	$(NODE_TOOLS)/node_modules/.bin/asl-validator --json-path $(BIN)/statemachine.json

## run: one export end to end with no cloud account: the built-in WorkOS fake -> ./out (a local folder only).
## make run DAYS=30 simulates a month of 1% daily churn: a full snapshot, then one incremental snapshot a day.
## With WORKOS_API_KEY set it exports that real account to EXPORT_DESTINATION (default ./out; s3://... for S3); give
## it a folder of its own (EXPORT_DESTINATION=./real): a real export refuses a folder that holds demo snapshots.
DAYS ?=
run:
	@if [ -n "$$WORKOS_API_KEY$$WORKOS_API_KEY_SECRET_ID" ]; then \
		EXPORT_DESTINATION=$${EXPORT_DESTINATION:-out} $(GO) run ./functions/export; \
	else \
		$(GO) run ./functions/export --demo $(if $(DAYS),--demo-days $(DAYS)); \
	fi

## bench: benchmark report (rate limits, one-core throughput, memory, output size, WorkOS Node SDK peer,
## Step Functions work units under one RIE per worker, an incremental day against a full walk); ~14 min on 2 cores.
## make bench BENCH_FLAGS="--out bench.md" | "--quick" | "--only ratelimited,peer"
bench: tools node-tools
	$(GO) run ./cmd/bench $(BENCH_FLAGS)

SOAK_SEEDS ?= 50
## soak: the fault soak: $(SOAK_SEEDS) seeds under 17% faults (half run as plan, resumed chunks, commit), SIGKILL + re-run,
## deadline, all under -race; then a 30-day incremental month (20 directories x 2,000 users, 1% churn, the same
## faults; without -race, which make test's small month has); then the same month with the Events API hostile (swapped
## pages, repeated cursors, early created_at, undecodable, silent and doubled events) (about 11 min on 2 cores).
soak: tools node-tools
	VERSITYGW_BIN=$(VERSITYGW) $(GO) test -race -v -run 'TestSoak$$' -count=1 -timeout 30m ./internal/testenv/soak -args -seeds=$(SOAK_SEEDS)
	VERSITYGW_BIN=$(VERSITYGW) $(GO) test -v -run 'TestSoakIncrementalMonth$$' -count=1 -timeout 30m ./internal/testenv/soak -args -month-dirs=20 -month-users=2000 -month-days=30
	VERSITYGW_BIN=$(VERSITYGW) $(GO) test -v -run 'TestSoakHostileMonth$$' -count=1 -timeout 30m ./internal/testenv/soak -args -hostile-dirs=20 -hostile-users=2000 -hostile-days=30 -hostile-churn=0.01

## fake: the WorkOS fake on 127.0.0.1:4100 (flags: make fake FAKE_FLAGS="--users 5000").
fake:
	$(GO) run ./cmd/workos-fake $(FAKE_FLAGS)

## s3: an S3 server (versitygw) on 127.0.0.1:7070 with the bucket dsync-export-local that events/env.json expects,
## data under ./.s3; in the foreground (Ctrl-C stops it). In the shell of make invoke-*: AWS_ACCESS_KEY_ID=local
## AWS_SECRET_ACCESS_KEY=localsecret AWS_REGION=us-east-1.
s3: $(VERSITYGW)
	@mkdir -p .s3/dsync-export-local
	@echo "s3: http://127.0.0.1:7070, bucket dsync-export-local (./.s3); export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=localsecret AWS_REGION=us-east-1; Ctrl-C stops it"
	$(VERSITYGW) --access local --secret localsecret --region us-east-1 --port 127.0.0.1:7070 posix .s3

## athena-ddl: print the Athena tables and <table>_latest views (make athena-ddl BUCKET=my-bucket);
## PREFIX, DATABASE and START override the stack's defaults (workos, dsync_export, 2026-01-01).
BUCKET ?= your-bucket
athena-ddl:
	@$(GO) run ./cmd/athena-ddl --bucket $(BUCKET) $(if $(PREFIX),--prefix $(PREFIX)) \
		$(if $(DATABASE),--database $(DATABASE)) $(if $(START),--start $(START))

## build: the Lambda bootstraps under ./dist (linux/$(GOARCH_LAMBDA)).
build:
	$(LAMBDA_BUILD) -o dist/export/bootstrap ./functions/export
	$(LAMBDA_BUILD) -o dist/verify/bootstrap ./functions/verify

EXPORT_EVENT ?= events/scheduled.json
VERIFY_EVENT ?= events/verify-manual.json

## invoke-export: run the export Lambda once under the Runtime Interface Emulator (no Docker) with events/env.json
## (WorkOS fake on 127.0.0.1:4100 = make fake; S3 on 127.0.0.1:7070, credentials from your shell).
invoke-export:
	$(GO) run ./cmd/invoke --function export --event $(EXPORT_EVENT) --env events/env.json

## invoke-verify: run the verify Lambda once the same way.
invoke-verify:
	$(GO) run ./cmd/invoke --function verify --event $(VERIFY_EVENT) --env events/env.json

# SAM (BuildMethod: makefile) calls these with ARTIFACTS_DIR set.
build-ExportFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/export

build-VerifyFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/verify

## clean: remove bin/, out/, dist/ and .aws-sam/.
clean:
	rm -rf $(BIN) out dist .aws-sam
