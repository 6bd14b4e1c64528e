# dsync-export. `make test` is the CI command; `make run` is the one-command local export.
SHELL := /bin/bash
GO ?= go
GOARCH_LAMBDA ?= arm64
VERSITYGW_VERSION := v1.8.0
BIN := $(CURDIR)/bin
VERSITYGW := $(BIN)/versitygw
LAMBDA_BUILD = GOOS=linux GOARCH=$(GOARCH_LAMBDA) CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'

.PHONY: all test test-short vet fmt lint tools run bench soak athena-ddl fake clean \
	build build-ExportFunction build-VerifyFunction invoke-export invoke-verify

all: test

## tools: install the pinned test tools into ./bin (versitygw, an S3 server that checks SigV4).
tools: $(VERSITYGW)

$(VERSITYGW):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) GOFLAGS=-mod=mod $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

## test: vet, then every test with the race detector (CI runs this).
test: tools
	$(GO) vet ./...
	VERSITYGW_BIN=$(VERSITYGW) $(GO) test -race -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## lint: formatting, vet, tidy go.mod and the SAM template.
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: run make fmt'; exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff
	cfn-lint template.yaml

clean:
	rm -rf $(BIN) out .aws-sam
