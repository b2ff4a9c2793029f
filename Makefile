# yeyak — the two commands a fresh machine needs are `make run` and `make test`.
GO        ?= go
PKGS      ?= ./...
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages that run goroutines of their own; they also run under -race.
RACE_PKGS ?= ./booking/... ./adapter/... ./cache/... ./outbox/...

.PHONY: run test test-short race lint bench chaos build fmt clean

build:
	$(GO) build -o bin/ ./cmd/...

## run: start the whole system on embedded defaults (SQLite, in-process Kafka, mock registry and identity provider)
run: build
	./bin/yeyakd --demo

## test: unit, contract and integration tests (PostgreSQL/Redis on 127.0.0.1 when present), then -race on concurrent packages
test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -race -timeout 20m $(RACE_PKGS)

## lint: gofmt, go vet, staticcheck (pinned, through the module proxy)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## bench: benchmarks with their baselines, figures into BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin/ yeyak-demo.db*
