# breakhook — the two commands a new user needs:
#   make run    install what is missing, build, run the server with a demo tenant
#   make test   install what is missing, build, run the whole test suite
# (plus: make build, make bench, make fuzz, make check-src, make clean)

BUILD      ?= build
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:8080
STORE      ?= sqlite:var/breakhook.db
FUZZ_SECONDS ?= 20

.PHONY: all deps build run test test-debug test-asan test-tsan fuzz check-src bench bench-smoke clean

all: build

deps:
	./scripts/install-deps.sh

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

run: build
	./$(BUILD)/release/breakhook serve --demo --listen $(LISTEN) --store $(STORE)

# The full suite: source checks, debug build + all tests, the same under
# ASan+UBSan, a short fuzzing run of every fuzz target, and the benchmark script in
# smoke mode (proves it works on this machine; it asserts no speed).
test: deps check-src test-debug test-asan fuzz bench-smoke

test-debug:
	cmake --preset debug >/dev/null
	cmake --build --preset debug -j $(JOBS)
	cd $(BUILD)/debug && ctest --output-on-failure -j $(JOBS)

test-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	cd $(BUILD)/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

test-tsan:
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	cd $(BUILD)/tsan && ctest --output-on-failure -L unit

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz-smoke.sh

check-src:
	./scripts/check-src.sh

bench: build
	./bench/run.sh

bench-smoke: test-debug
	BIN=$(BUILD)/debug/breakhook ./bench/run.sh --smoke

clean:
	rm -rf $(BUILD)
