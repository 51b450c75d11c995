# outreach: two commands do everything on a fresh Debian 12 machine.
#   make run    install missing packages, build (Release), start outreachd on ./data
#   make test   install missing packages, then every stage below, each with a one-line summary
#
# The stages of `make test`, each runnable alone:
#   make test-unit    Release build in ./build, the FHIR test's npm validator (npm ci into
#                     ./build/fhir-npm), every test but the deploy ones with ctest
#   make test-asan    the domain, store, server and FHIR mapping tests built with ASan + UBSan
#                     (gcc, -O1) in ./build-asan; any report (including a leak) fails
#   make test-tsan    the store's concurrency tests (group-commit writer, fault tests) built with
#                     TSan (gcc, -O1) in ./build-tsan; any report fails (tests/tsan.supp lists
#                     the RocksDB-internal reports it suppresses, and why)
#   make fuzz-smoke   the libFuzzer targets (clang-14) in ./build-fuzz, FUZZ_SMOKE_SECONDS each
#   make test-deploy  issue 15's deployment, with the real tools: `make image`, the systemd test
#                     image (a Debian root with systemd, from mmdebstrap), the npm validator, then
#                     the "deploy" tests (tests/deploy: the image under podman, the unit under
#                     systemd-analyze and booted in a container, the Kubernetes manifests)
# and, outside `make test`:
#   make image        the outreachd OCI image (deploy/image/), IMAGE=localhost/outreach:latest
#   make fuzz         the same targets, FUZZ_SECONDS (default 60) each
BUILD_DIR ?= build
ASAN_DIR  ?= build-asan
TSAN_DIR  ?= build-tsan
FUZZ_DIR  ?= build-fuzz
DB        ?= ./data
LISTEN    ?= 127.0.0.1:50051
TIME_ZONE ?= UTC
# `make run MASTER_KEY=FILE`: an encrypted database (README "Privacy"), erasures listed in
# FILE.erasures; empty (the default): plain mode.
MASTER_KEY ?=
# Prometheus metrics of `make run` (GET http://$(METRICS)/metrics); empty turns them off.
METRICS   ?= 127.0.0.1:9464
JOBS      ?= $(shell nproc)
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_CC  ?= clang-14
FUZZ_CXX ?= clang++-14
IMAGE    ?= localhost/outreach:latest
SYSTEMD_TEST_IMAGE ?= localhost/outreach-systemd-test:latest
NPM_DIR  ?= $(BUILD_DIR)/deploy-npm
FHIR_NPM_DIR ?= $(BUILD_DIR)/fhir-npm
# podman on machines like CI's (runc, cgroupfs, file events logger, ulimits within the hard
# limits): deploy/image/containers.conf. Empty: podman's own configuration.
PODMAN_CONF ?= $(CURDIR)/deploy/image/containers.conf
# New build trees use Ninja (ninja-build, from deploy/install-deps.sh): it compiles a target's
# files while the libraries it links are still being built, which keeps both cores busy where
# make's per-target steps leave one idle. CMake reads this only when it creates a tree: a tree made
# earlier with another generator keeps it.
CMAKE_GENERATOR ?= Ninja
export CMAKE_GENERATOR

# Test binaries per instrumented build, as <folder under tests/>/<binary>. e2e_test is left out:
# it runs outreachd, a second full binary to build and instrument, over the code the server tests
# already run in-process.
ASAN_TESTS ?= domain/domain_test store/store_test store/store_fault_test server/server_test server/security_test \
              ctl/fhir_mapping_test
# TSan runs the store's tests: the group-commit writer and everything that talks to it from other
# threads (concurrent submits, batches, head waiters and listeners, the expiry scheduler,
# backups during writes, failing syncs and power cuts). The server tests are not run under TSan:
# Debian's libgrpc is not instrumented, and the half of gRPC's callback API that lives in its
# headers (call objects, arenas, byte buffers, our messages passed through them) races, as far as
# TSan can see, with every step gRPC orders with atomics inside the library: about 1750 reports
# per run, none separable from our code by a suppression narrower than "anything gRPC touches".
TSAN_TESTS ?= store/store_test store/store_fault_test

# Sanitizer runtime settings. UBSan needs none to fail: -fno-sanitize-recover=all makes its
# first report abort. TSan exits 66 after reporting, which fails the binary; history_size=7 (its
# maximum) keeps the earlier access's stack restorable, which a suppression needs to match it.
SANITIZER_ENV = \
  ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1 \
  UBSAN_OPTIONS=print_stacktrace=1 \
  TSAN_OPTIONS=suppressions=$(CURDIR)/tests/tsan.supp:second_deadlock_stack=1:history_size=7
# `make test` installs the packages once, then runs the stages with DEPS empty.
DEPS ?= deps
CTEST = ctest --output-on-failure -j$(JOBS)
STAGE = .ci/stage
STAGES_FILE = build-logs/stages.txt

.PHONY: all deps deploy-deps configure build run test test-unit test-asan test-tsan fuzz \
        fuzz-smoke asan-build tsan-build fuzz-build clean image test-deploy

all: build

deps:
	./deploy/install-deps.sh

deploy-deps:
	./deploy/install-deps.sh --deploy

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	$(BUILD_DIR)/server/outreachd --db $(DB) --listen $(LISTEN) --time-zone $(TIME_ZONE) \
	  --metrics-listen=$(METRICS) \
	  $(if $(MASTER_KEY),--master-key-file=$(MASTER_KEY) --erasure-list=$(MASTER_KEY).erasures)

# Every stage, in order; stops at the first that fails. The summary lines are printed again at
# the end so that a CI log ends with the whole picture.
test: deps deploy-deps
	@mkdir -p build-logs && rm -f $(STAGES_FILE)
	@$(MAKE) --no-print-directory STAGE_SUMMARY=$(CURDIR)/$(STAGES_FILE) DEPS= DEPLOY_DEPS= \
	  test-unit test-deploy test-asan test-tsan fuzz-smoke; \
	  status=$$?; echo "== make test"; cat $(STAGES_FILE); exit $$status

# The FHIR export's test validates the files with HL7's FHIR R4 JSON schema through a test-only
# npm package (tests/ctl/fhir/package.json, its lock file pinning every version), installed with
# `npm ci` into $(FHIR_NPM_DIR) before the tests run; the product's build downloads nothing.
test-unit: $(DEPS)
	@$(STAGE) build sh -c 'cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release \
	  --log-level=WARNING && cmake --build $(BUILD_DIR) -j$(JOBS)'
	@$(STAGE) test-npm sh -c 'mkdir -p $(FHIR_NPM_DIR) && \
	  cp tests/ctl/fhir/package.json tests/ctl/fhir/package-lock.json $(FHIR_NPM_DIR)/ && \
	  npm ci --prefix $(FHIR_NPM_DIR) --no-audit --no-fund --loglevel=error'
	@$(STAGE) test-unit env OUTREACH_FHIR_NODE_MODULES=$(abspath $(FHIR_NPM_DIR))/node_modules \
	  $(CTEST) --test-dir $(BUILD_DIR) --timeout 600 -LE deploy

DEPLOY_DEPS ?= deploy-deps
PODMAN_ENV = $(if $(PODMAN_CONF),CONTAINERS_CONF=$(PODMAN_CONF))

image: $(DEPLOY_DEPS) build
	$(PODMAN_ENV) deploy/image/build-image.sh $(BUILD_DIR) $(IMAGE)

# Builds what the deploy tests run (Release binaries, the two images, the npm validator), then
# runs them. The systemd root is cached in $(BUILD_DIR)/deploy-cache.
test-deploy: $(DEPS) $(DEPLOY_DEPS)
	@$(STAGE) deploy-build sh -c 'cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release \
	  --log-level=WARNING && cmake --build $(BUILD_DIR) -j$(JOBS) \
	  --target outreachd outreachctl deploy_test && \
	  $(PODMAN_ENV) deploy/image/build-image.sh $(BUILD_DIR) $(IMAGE) && \
	  $(PODMAN_ENV) deploy/systemd/build-test-image.sh $(BUILD_DIR) $(SYSTEMD_TEST_IMAGE) && \
	  mkdir -p $(NPM_DIR) && cp tests/deploy/k8s/package.json tests/deploy/k8s/package-lock.json \
	  $(NPM_DIR)/ && npm ci --prefix $(NPM_DIR) --no-audit --no-fund --loglevel=error'
	@$(STAGE) test-deploy env $(PODMAN_ENV) OUTREACH_IMAGE=$(IMAGE) \
	  OUTREACH_SYSTEMD_IMAGE=$(SYSTEMD_TEST_IMAGE) OUTREACH_NODE_MODULES=$(abspath $(NPM_DIR))/node_modules \
	  $(CTEST) --test-dir $(BUILD_DIR) --timeout 600 -L deploy

asan-build: $(DEPS)
	@$(STAGE) asan-build sh -c 'cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug \
	  -DOUTREACH_SANITIZE=address --log-level=WARNING && \
	  cmake --build $(ASAN_DIR) -j$(JOBS) --target $(notdir $(ASAN_TESTS))'

test-asan: asan-build
	@$(STAGE) test-asan env $(SANITIZER_ENV) .ci/run-tests $(ASAN_DIR) $(JOBS) $(ASAN_TESTS)

tsan-build: $(DEPS)
	@$(STAGE) tsan-build sh -c 'cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=Debug \
	  -DOUTREACH_SANITIZE=thread --log-level=WARNING && \
	  cmake --build $(TSAN_DIR) -j$(JOBS) --target $(notdir $(TSAN_TESTS))'

test-tsan: tsan-build
	@$(STAGE) test-tsan env $(SANITIZER_ENV) .ci/run-tests $(TSAN_DIR) $(JOBS) $(TSAN_TESTS)

fuzz-build: $(DEPS)
	@$(STAGE) fuzz-build sh -c 'CC=$(FUZZ_CC) CXX=$(FUZZ_CXX) cmake -S . -B $(FUZZ_DIR) \
	  -DCMAKE_BUILD_TYPE=Debug -DOUTREACH_FUZZ=ON --log-level=WARNING && \
	  cmake --build $(FUZZ_DIR) -j$(JOBS) --target fuzzers'

fuzz-smoke: fuzz-build
	@$(STAGE) fuzz-smoke env FUZZ_JOBS=$(JOBS) tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SMOKE_SECONDS)

fuzz: fuzz-build
	@$(STAGE) fuzz env FUZZ_JOBS=$(JOBS) tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) $(FUZZ_DIR) build-logs

# Performance (issues 5 and 18): not part of `make test`. Installs PostgreSQL for the anchor
# (bench-deps), builds Release, runs the load tool's scenarios against a fresh outreachd, the
# disk's fsync probe, the PostgreSQL anchor (pgbench), the store micro-benchmarks and the
# 1M-event measurements, prints the table of issue 18's targets and writes bench-results.json.
.PHONY: bench bench-deps
# DEPS= (packages already installed) skips this step too.
BENCH_DEPS ?= $(if $(DEPS),bench-deps)
bench-deps:
	./deploy/install-deps.sh --bench

bench: $(BENCH_DEPS)
	tests/bench/run_bench.sh
