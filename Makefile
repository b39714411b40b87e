# Thin wrapper around CMake. `make demo` and `make check` each install missing Debian
# packages (as root), configure, build, and run the demo / the tests.
BUILD    ?= build
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1

.PHONY: all deps test-deps configure build demo check check-asan bench install clean format

all: build

deps:
	@scripts/setup-deps.sh

test-deps:
	@scripts/setup-deps.sh --test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The demo: all cores (one rank, one thread per core), then the summary.
demo: build
	@mkdir -p out
	OMP_NUM_THREADS=$(JOBS) $(BUILD)/heartbeat run configs/demo.ini --output out/demo.h5
	$(BUILD)/heartbeat summary out/demo.h5

check: test-deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
check-asan: test-deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DHB_SANITIZE=ON -DHB_NATIVE=ON
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j $(JOBS) -LE slow

bench: build
	bench/run.sh $(BUILD)

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan out
