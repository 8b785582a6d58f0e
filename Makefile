# Ferry: the two quick-start commands are `make run` and `make test`.
BUILD_DIR ?= build
JOBS ?= 2
CONFIG ?= examples/ferry.toml

.PHONY: all setup build run test unit clean fuzz bench sanitize

all: build

setup:
	@scripts/setup

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja

build: setup $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Only the server binary: the unit tests and other targets wait for `make build` or `make test`.
run: setup $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) --target ferry -j $(JOBS)
	@echo "ferry: serving $(CONFIG); mail for example.test lands in var/mail/example.test/<user>/new/"
	$(BUILD_DIR)/ferry serve --config $(CONFIG)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -R '^[A-Za-z]+\.' -E '^integration\.'

# libFuzzer targets (tests/fuzz/): a clang + ASan/UBSan build in $(FUZZ_BUILD_DIR), then each target runs for
# FUZZ_SECONDS on a scratch copy of its seed corpus; fails when any target finds a crash (inputs under
# $(FUZZ_BUILD_DIR)/fuzz/artifacts/). FUZZ_TARGETS picks some, e.g. `make fuzz FUZZ_TARGETS=fuzz_session`.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?=

fuzz: setup
	@scripts/setup fuzz
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DFERRY_FUZZ=ON
	cmake --build $(FUZZ_BUILD_DIR) --target fuzz_targets -j $(JOBS)
	tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer: g++ builds everything in $(ASAN_BUILD_DIR) with
# -DFERRY_SANITIZE=ON, then ctest runs the whole suite there: the unit tests, and the integration tests, which
# start that directory's sanitized `ferry serve` (ctest sets FERRY_BIN). Any report fails: a sanitized process
# exits with status 86 (a leak too, at exit), and tests/integration/conftest.py fails a test whose server logged
# a report or did not exit 0 on SIGTERM. No suppressions: nothing we link forces one. Debug, because on 2 cores
# it builds in a third of RelWithDebInfo's time (about 2 against 5.5 minutes from a cold ccache) and the suite,
# mostly waiting on sockets and fsync, runs no slower.
ASAN_BUILD_DIR ?= build-asan
ASAN_BUILD_TYPE ?= Debug
SANITIZER_ENV = ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:exitcode=86:check_initialization_order=1:strict_init_order=1:strict_string_checks=1 \
                UBSAN_OPTIONS=halt_on_error=1:abort_on_error=0:print_stacktrace=1:exitcode=86

sanitize: setup
	CXX=g++ cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DFERRY_SANITIZE=ON -DCMAKE_BUILD_TYPE=$(ASAN_BUILD_TYPE)
	$(SANITIZER_ENV) cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)
	cd $(ASAN_BUILD_DIR) && $(SANITIZER_ENV) ctest --output-on-failure -j $(JOBS)

# Ferry against Postfix and OpenSMTPD in one run (bench/run; needs root and ../shared/peers). Never part of
# `make test`. Writes bench/results/latest.md. BENCH_ARGS passes options to bench-peers.sh. Its last step is
# bench/filters.sh (Ferry + rspamd against Postfix + rspamd as a milter; SKIP_FILTERS=1 skips it, and it also runs
# alone: `bench/filters.sh`), which writes bench/results/filters-<date>.md and a paragraph in latest.md; then
# bench/policy.sh (Ferry with the issue-18 policy against without it; SKIP_POLICY=1 skips it, it also runs alone),
# which writes bench/results/policy-<date>.md and its paragraph in latest.md.
bench: build
	@scripts/setup bench
	cmake --build $(BUILD_DIR) --target ferry_micro -j $(JOBS)
	$(BUILD_DIR)/ferry_micro --benchmark_min_time=0.2 | tee bench/results/micro-latest.txt
	bench/run

clean:
	rm -rf $(BUILD_DIR)
