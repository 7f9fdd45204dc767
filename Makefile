# husk: an OCI container runtime. `make demo` runs a container; `make test` runs the tests.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
HUSK_RELEASE := target/release/husk
DEMO_DIR ?= /var/tmp/husk-demo

.PHONY: all build release deps demo test unit integration cgroup-v2 lint clean

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

# The cgroup manager's tests on this host and in a throwaway cgroup-v2-only VM (tests/vm).
cgroup-v2:
	tests/vm/run-cgroup-tests.sh

test: deps lint unit integration cgroup-v2

clean:
	$(CARGO) clean
	rm -rf $(DEMO_DIR) /var/tmp/husk-tests /run/husk-tests
