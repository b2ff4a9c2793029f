# yeyak — the two commands a fresh machine needs are `make run` and `make test`.
GO        ?= go
PKGS      ?= ./...
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages that run goroutines of their own; they also run under -race.
RACE_PKGS ?= ./booking/... ./adapter/... ./cache/... ./outbox/... ./cmd/yeyak-load/load ./cmd/yeyak-chaos/harness

.PHONY: run test test-short race lint bench chaos chaos-short surge build fmt clean

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

## bench: every figure with its baseline in one sitting (about 5-10 minutes; PostgreSQL on 127.0.0.1, pgbench), into BENCHMARKS.md
bench: build
	./bin/yeyak-bench --yeyakd bin/yeyakd -o BENCHMARKS.md

## chaos: the six fault scenarios in full (about 10 minutes; PostgreSQL server binaries), one PASS/FAIL line each, verdicts into BENCHMARKS.md (the surge: make surge)
chaos: build
	./bin/yeyak-chaos --run '^(registry-outage|registry-stall|registry-slow|kafka-down|yeyakd-kill|postgres-restart)$$' --yeyakd bin/yeyakd --report BENCHMARKS.md

## chaos-short: the fault scenarios and the surge in seconds each (make test runs them as TestChaosShort)
chaos-short: build
	./bin/yeyak-chaos --short --yeyakd bin/yeyakd

## surge: 50,000 people into the waiting room within seconds (about 5 minutes), its figures and verdict into BENCHMARKS.md
surge: build
	./bin/yeyak-chaos --run '^surge$$' --yeyakd bin/yeyakd --report BENCHMARKS.md

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin/ yeyak-demo.db*
