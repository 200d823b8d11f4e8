# breakhook — the two commands a new user needs:
#   make run    install what is missing, build, run the server with a demo tenant
#   make test   install what is missing, build, run the whole test suite
# (plus: make build, make bench, make fuzz, make fuzz-long, make soak, make check-src,
#  make check-contrib, make clean)

BUILD      ?= build
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:8080
STORE      ?= sqlite:var/breakhook.db
FUZZ_SECONDS ?= 30
# make soak's length in seconds (both rounds, settling included, bar a slow settle).
SOAK_SECONDS ?= 480
# Extra `serve` flags for make run, e.g.
#   make run ARGS="--allow-http-destinations --allow-destination 127.0.0.1/32"
ARGS       ?=
# OFF for the release a user builds (a newer compiler's new warning must not stop
# it); the test suite builds the same release with WERROR=ON.
WERROR     ?= OFF

.PHONY: all deps build run test test-debug test-asan test-tsan fuzz fuzz-long soak check-src \
        check-contrib bench bench-smoke first-run clean

all: build

deps:
	./scripts/install-deps.sh

build: deps
	cmake --preset release -DBREAKHOOK_WERROR=$(WERROR) >/dev/null
	cmake --build --preset release -j $(JOBS)

run: build
	./$(BUILD)/release/breakhook serve --demo --listen $(LISTEN) --store $(STORE) $(ARGS)

# The full suite: source checks; the alert rules, their unit tests and the Grafana
# dashboard (check-contrib); the README's first session run as a user runs it
# (release build with gcc and -Werror, the server, the printed curl lines, a first
# webhook to `breakhook sink`); debug build + all tests; the same under ASan+UBSan;
# a short fuzzing run of every fuzz target; the benchmark script in smoke mode
# (proves it works on this machine; it asserts no speed).
# The debug pass runs the integration suite twice, on SQLite and on a throwaway
# PostgreSQL cluster (label pg-integration); the ASan pass runs it on SQLite only,
# beside the store contract on both.
test: deps check-src check-contrib first-run test-debug test-asan fuzz bench-smoke

first-run: deps
	WERROR=ON ./scripts/first-run-smoke.sh

test-debug:
	cmake --preset debug >/dev/null
	cmake --build --preset debug -j $(JOBS)
	cd $(BUILD)/debug && ctest --output-on-failure -j $(JOBS)

test-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	cd $(BUILD)/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS) \
	  -LE pg-integration

test-tsan:
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	cd $(BUILD)/tsan && ctest --output-on-failure -L unit

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz-smoke.sh

# Not part of make test: ten minutes per target.
fuzz-long:
	FUZZ_SECONDS=600 ./scripts/fuzz-smoke.sh

# Not part of make test: the chaos soak of issue #12 (tests/soak/soak.c explains it and
# its output). Random writes with --coalesce on, then off, kill -9 of the server every
# few seconds, a destination that fails, hangs and resets, a disk that fills and frees;
# then every acknowledged write must have been delivered, in order. SOAK_SEED replays.
soak: build
	SOAK_SECONDS=$(SOAK_SECONDS) ./$(BUILD)/release/soak

check-src:
	./scripts/check-src.sh

# contrib/: promtool checks the alert rules and runs their unit tests (and that each
# alert's tests fail when its expression is broken); the Grafana dashboard must be
# valid JSON. `./scripts/check-contrib.sh FILE`, FILE a scrape of a running server's
# /metrics, also checks every metric name they use against it.
check-contrib: deps
	./scripts/check-contrib.sh

bench: build
	./bench/run.sh

bench-smoke: test-debug
	BIN=$(BUILD)/debug/breakhook ./bench/run.sh --smoke

clean:
	rm -rf $(BUILD)
