# Thin wrapper over CMake. `make demo` and `make test` work on a fresh Debian 12 machine.
#   make          build build/fruitpipe
#   make demo     install deps, build, run the full pipeline on the dev Test split
#   make test     everything CI runs: `check`, then `asan`, then `fuzz`; ends with one
#                 CTest-style summary line over all of them
#   make check    install deps, build (warnings as errors), run every test (the quick loop)
#   make asan     the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz     each libFuzzer target for FUZZ_SECONDS from its seed corpus (clang build)
#   make bench    benchmarks (figures, not tests)
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)
SHARED ?= $(abspath ../shared)
FRUITS_DIR ?= $(SHARED)/data/fruits360-dev/Test
FRUITPIPE_MODEL ?= $(SHARED)/models/mobilenet_v2_features.json
DEMO_OUT ?= out/demo
export FRUITPIPE_MODEL

.PHONY: all deps configure build demo test check asan fuzz bench clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRUITPIPE_WERROR=ON

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

demo: deps build
	rm -rf $(DEMO_OUT)
	$(BUILD)/fruitpipe run "$(FRUITS_DIR)" $(DEMO_OUT)
	$(BUILD)/fruitpipe inspect $(DEMO_OUT)/Results_PCA --rows 2
	@echo "demo: outputs in $(DEMO_OUT) (open $(DEMO_OUT)/report.html)"

# Each suite appends its CTest summary to $(SUMMARY); the last line totals them.
SUMMARY ?= $(BUILD)/test-summary.txt

test: export FRUITPIPE_TEST_SUMMARY = $(abspath $(SUMMARY))
test: deps
	@mkdir -p $(dir $(SUMMARY)) && rm -f $(SUMMARY)
	$(MAKE) --no-print-directory check asan fuzz
	@bash scripts/test-summary.sh $(SUMMARY)

check: deps build
	bash scripts/run-tests.sh $(BUILD)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRUITPIPE_SANITIZE=ON -DFRUITPIPE_WERROR=ON -DFRUITPIPE_BUILD_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	bash scripts/run-tests.sh $(ASAN_BUILD)

fuzz: deps
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: deps build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) out
