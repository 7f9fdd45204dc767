# husk: an OCI container runtime. `make demo` runs a container; `make test` runs the tests.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
# Cargo builds for the host's tuple (.cargo/config.toml): binaries are in $(OUT)/{debug,release}.
# Recursive (=) so rustc is looked up when a recipe runs, after `deps` has installed it.
HOST_TUPLE = $(shell PATH="$(PATH)" rustc -vV 2>/dev/null | sed -n 's/^host: //p')
OUT = $(abspath $(or $(CARGO_TARGET_DIR),target))/$(or $(HOST_TUPLE),$(error rustc not found: run make deps))
HUSK_RELEASE = $(OUT)/release/husk
DEMO_DIR ?= /var/tmp/husk-demo

.PHONY: all build release deps demo test unit integration cgroup-v2 e2e lint clean soak

all: release

deps:
	@scripts/deps.sh

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p husk

demo: deps release
	@HUSK=$(HUSK_RELEASE) scripts/mkbundle.sh $(DEMO_DIR)/bundle
	$(HUSK_RELEASE) --root $(DEMO_DIR)/state run --bundle $(DEMO_DIR)/bundle demo-$$$$

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --exclude husk-tests --exclude husk-cgroups

integration: build
	$(CARGO) test -p husk-tests

# The reliability soak (tests/tests/soak.rs, tests/tests/crash.rs with HUSK_SOAK=1): 1,000
# containers counting state dirs, cgroups, mounts, processes and fds before/after; 50
# concurrent creates of one id; and the kill loop at every system call of create, start,
# delete and run. Not part of `make test` (about 10 minutes); the kill loop at the system
# calls that change something, and the other crash tests, are (`make integration`).
soak: build
	HUSK_SOAK=1 $(CARGO) test -p husk-tests --test soak --test crash -- --test-threads=1 --nocapture 2>&1 \
		| grep -E '^(soak|kill loop|test |test result)|panicked|left'; exit $${PIPESTATUS[0]}

# The cgroup manager's tests on this host and in a throwaway cgroup-v2-only VM (tests/vm).
cgroup-v2:
	tests/vm/run-cgroup-tests.sh

# Podman and containerd driving husk as their runtime (integration/README.md); the same
# suites against runc prove the suites themselves.
e2e: build
	integration/run.sh --runtime $(OUT)/debug/husk all
	@if command -v runc >/dev/null; then integration/run.sh --runtime "$$(command -v runc)" all; fi

test: deps lint unit integration cgroup-v2 e2e conformance

clean:
	$(CARGO) clean
	rm -rf $(DEMO_DIR) /var/tmp/husk-tests /run/husk-tests

# `make bench`: husk vs runc vs crun, interleaved, on one busybox bundle (bench/README.md).
# BENCH_ITERS=N (default 100) rounds per metric; the table also goes to target/bench.json.
BENCH_DIR ?= /var/tmp/husk-bench
.PHONY: bench
bench: release
	@HUSK_EXTRA_DEPS="runc crun" scripts/deps.sh
	@HUSK=$(OUT)/release/husk scripts/mkbundle.sh $(BENCH_DIR)/bundle /bin/true
	$(CARGO) build --release -p husk-bench
	@mkdir -p target
	@nice -n -10 $(OUT)/release/husk-bench $(OUT)/release/husk \
		$(BENCH_DIR)/bundle target/bench.json; rc=$$?; rm -rf $(BENCH_DIR); exit $$rc

# `make conformance`: the OCI runtime-spec checks of conformance/ (conformance/README.md)
# against runc when it is installed (for comparison only), then against husk, whose result
# decides the exit code. Run as root.
# `make bench-v2`: the same on a cgroup v2 host, in the qemu VM of tests/vm (bench/v2vm.sh).
.PHONY: bench-v2
bench-v2: release
	@HUSK_EXTRA_DEPS="runc crun" scripts/deps.sh
	@HUSK=$(HUSK_RELEASE) scripts/mkbundle.sh $(BENCH_DIR)/bundle /bin/true
	$(CARGO) build --release -p husk-bench
	@mkdir -p target
	bench/v2vm.sh $(HUSK_RELEASE) $(OUT)/release/husk-bench $(BENCH_DIR)/bundle \
		target/bench-v2.json; rc=$$?; rm -rf $(BENCH_DIR); exit $$rc

.PHONY: conformance
conformance:
	$(CARGO) build -p husk -p husk-conformance
	@if command -v runc >/dev/null; then \
		echo "== runc $$(command -v runc) (for comparison; does not decide the result)"; \
		$(OUT)/debug/husk-conformance --runtime "$$(command -v runc)" || true; \
		echo; \
	fi
	@echo "== husk $(OUT)/debug/husk"
	@$(OUT)/debug/husk-conformance --runtime $(OUT)/debug/husk
