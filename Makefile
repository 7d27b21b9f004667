# nscheck: build, test and run the namespace isolation checks.
# `sudo make check` runs nscheck on this host; `sudo make test` runs the tests.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/nscheck
PKGS := ./...

.PHONY: all build test check lint fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(BIN) ./cmd/nscheck

# The whole test suite: unit tests, the property suites on this kernel (as
# root they run every property), and the end-to-end tests of the command.
test:
	$(GO) test -count=1 -timeout 30m $(PKGS)

# Run nscheck on this host.
check: build
	./$(BIN) run

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Short fuzzing runs of every parser (corpora in testdata/fuzz).
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./internal/sysvipc
	$(GO) test -run '^$$' -fuzz FuzzRoundTrip -fuzztime $(FUZZTIME) ./internal/initramfs
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime $(FUZZTIME) ./internal/initramfs
	$(GO) test -run '^$$' -fuzz FuzzFrameReader -fuzztime $(FUZZTIME) ./internal/vm
	$(GO) test -run '^$$' -fuzz FuzzParseSetupHeader -fuzztime $(FUZZTIME) ./internal/vm

clean:
	rm -rf bin
