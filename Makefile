# nscheck: build, test and run the namespace isolation checks.
# `sudo make check` runs nscheck on this host; `sudo make test` runs the tests.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/nscheck
PKGS := ./...

.PHONY: all build test zoo zoo-readme check lint fuzz bench docs generate mutants release clean

all: build

# nscheck embeds its lean helper (internal/helperbin), static and stripped:
# internal/leanbuild builds the helper first, then nscheck with the
# helperbin tag (the benchmarks and releases build through it too). A plain
# `go build ./cmd/nscheck` works too, its helpers execute a copy of nscheck
# with the helpers' packages initialised first (internal/initorder; slower
# to start than the lean one).
build:
	$(GO) run ./internal/leanbuild/build -go $(GO) -o $(BIN)

# A release, VERSION=vX.Y.Z: a commit beside main (not on it) that adds the
# lean helper for each architecture to cmd/nscheck/release, tagged VERSION,
# so that `go install github.com/nscheck/nscheck/cmd/nscheck@VERSION` (and
# @latest) embeds it (internal/release). Push the tag, not a branch.
release:
	@case "$(VERSION)" in v[0-9]*) ;; *) echo "usage: make release VERSION=vX.Y.Z"; exit 2;; esac
	@git diff --quiet HEAD || { echo "release: commit or stash your changes first"; exit 2; }
	@! git rev-parse -q --verify "refs/tags/$(VERSION)" >/dev/null || { echo "release: tag $(VERSION) exists"; exit 2; }
	set -e; wt=$$(mktemp -d); trap 'git worktree remove --force "$$wt"' EXIT; \
	git worktree add -q --detach "$$wt" HEAD; \
	(cd "$$wt" && $(GO) run ./internal/release/write "$(VERSION)" && git add cmd/nscheck/release && \
	 git commit -q -m "release $(VERSION): the lean helpers go install embeds" && \
	 git tag -a -m "nscheck $(VERSION)" "$(VERSION)"); \
	echo "tagged $(VERSION); git push origin $(VERSION)"

# The whole test suite: unit tests, the property suites on this kernel (as
# root they run every property), the end-to-end tests of the command, and
# the example module that uses nscheck as a Ginkgo library (examples/),
# then the environment zoo.
test:
	$(GO) test -count=1 -timeout 30m $(PKGS)
	cd examples/uts-plus && $(GO) test -count=1 -timeout 5m ./...
	$(MAKE) zoo

# The environment zoo (internal/zoo), as root: nscheck env and run in each
# environment of issue 14 (a capability less, nested namespaces, rootless,
# seccomp, zero limits, Docker, QEMU guests), failing on any false
# "isolation broken", harness error or unpredicted skip. Alone (-p 1): it
# runs its environments concurrently itself. Writes bin/zoo/table.md;
# `make zoo-readme` puts that table into README.md.
zoo:
	NSCHECK_ZOO=1 $(GO) test -count=1 -p 1 -timeout 20m -run '^TestZoo$$' ./internal/zoo

zoo-readme:
	NSCHECK_ZOO_README=1 $(GO) test -count=1 -run '^TestWriteReadme$$' ./internal/zoo

# What is generated from the code: the property catalog (docs/properties.md;
# TestCatalogUpToDate in cmd/nscheck fails when it is stale) and the
# packages a helper links (cmd/nscheck/helperdeps.txt, which a nscheck
# built without the lean helper initialises first in its helpers;
# TestHelperDepsUpToDate).
generate: docs
	{ echo "# go list -deps ./internal/helpermode: what a helper initialises (make generate)"; \
	  echo "go $$($(GO) env GOVERSION)"; $(GO) list -deps ./internal/helpermode; } > cmd/nscheck/helperdeps.txt.tmp
	mv cmd/nscheck/helperdeps.txt.tmp cmd/nscheck/helperdeps.txt

docs:
	$(GO) run ./cmd/nscheck list --markdown > docs/properties.md.tmp
	mv docs/properties.md.tmp docs/properties.md

# Run nscheck on this host.
check: build
	./$(BIN) run

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	$(GO) run $(ACTIONLINT) .github/workflows/*.yml

# The GitHub Actions workflows are checked by actionlint (and, through it,
# their shell steps by shellcheck when it is installed).
ACTIONLINT := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

# Short fuzzing runs of every Fuzz function of every package (the corpora
# the fuzzer finds interesting are kept in each package's testdata/fuzz).
# The budget is a count of executions: a duration races Go's fuzzing
# coordinator at its deadline and can fail a clean run with "context
# deadline exceeded" (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 20000x
fuzz:
	@set -e; for f in $$(grep -l --include='*_test.go' -r '^func Fuzz' .); do \
		pkg=./$$(dirname $$f); \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$pkg $$fn"; $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# Benchmarks against the kernel's floor (see internal/bench); as root. The
# VM benchmark boots each kernel .ci/run and .ci/kernels.sh cached once per
# count (the target is 10 s an x86_64 kernel under TCG).
BENCHCOUNT ?= 5
bench:
	$(GO) test -run '^$$' -bench Spawn -benchtime 200x -count $(BENCHCOUNT) ./internal/bench | tee bench.out
	$(GO) test -run '^$$' -bench Catalog -benchtime 10x -count $(BENCHCOUNT) ./internal/bench | tee -a bench.out
	$(GO) test -run '^$$' -bench VM -benchtime 1x -count $(BENCHCOUNT) -timeout 60m ./internal/bench | tee -a bench.out
	@awk -f .ci/bench-summary.awk bench.out

# Proof on kernels with injected isolation bugs (internal/mutants): builds
# Debian's linux-source-6.1 from mutants/kernel.config, once unmodified and
# once per patch of mutants/ (images cached in /var/cache/nscheck/mutants by
# source version, config and patch), boots each with nscheck vm under TCG
# and writes the score to bin/mutants/score.md. Needs linux-source-6.1 and
# the kernel build dependencies (see .ci/run).
mutants: build
	NSCHECK_MUTANTS=1 NSCHECK_BIN=$(CURDIR)/$(BIN) NSCHECK_MUTANTS_OUT=$(CURDIR)/bin/mutants \
		$(GO) test -count=1 -timeout 150m -v -run '^TestMutantKernels$$' ./internal/mutants

clean:
	rm -rf bin
