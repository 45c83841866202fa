# The two set-up commands of the README. Everything else is CMake + Ninja under build/.
BUILD ?= build
DATA  ?= var
DEB   ?= build-deb
JOBS  ?= 2

.PHONY: run test build deps clean deb
deps:
	scripts/install-deps

build: deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) -G Ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@[ -f $(DATA)/starling.db ] || $(BUILD)/src/app/starling setup --data-dir $(DATA) \
	    --server-name demo --fqdn mail.starling.test --listen 127.0.0.1:2525 \
	    --submission-listen 127.0.0.1:2587 --accepted-domain starling.test --mailbox alice@starling.test
	exec $(BUILD)/src/app/starlingd --data-dir $(DATA)

# Every test with two I/O threads, then the end-to-end ones again with one (docs/architecture.md).
test: build
	cd $(BUILD) && STARLING_IO_THREADS=2 ctest --output-on-failure -j $(JOBS) --timeout 600
	cd $(BUILD) && STARLING_IO_THREADS=1 ctest --output-on-failure -j $(JOBS) --timeout 600 -L e2e

clean:
	rm -rf $(BUILD)

# The Debian package from a copy of the tree (the tree stays clean): $(DEB)/starling_*.deb.
# debhelper gives the build its own HOME: ccache is told where its cache is.
deb: deps
	rm -rf $(DEB)/src && mkdir -p $(DEB)/src
	tar -c --exclude-vcs --exclude=./build --exclude='./build-*' --exclude=./var --exclude=__pycache__ . \
	    | tar -x -C $(DEB)/src
	cd $(DEB)/src && CCACHE_DIR=$$(ccache -k cache_dir) CCACHE_BASEDIR=$(abspath $(DEB)/src) \
	    DEB_BUILD_OPTIONS="parallel=$(JOBS) nocheck noautodbgsym" dpkg-buildpackage -b -us -uc

# The libFuzzer targets with ASan and UBSan, a clang build of its own (docs/fuzzing.md).
FUZZ_BUILD ?= build-fuzz
.PHONY: fuzz
fuzz: deps
	@[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD) -G Ninja -DSTARLING_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# The whole suite under ThreadSanitizer with two I/O threads, a build of its own (docs/architecture.md).
# A report stops the process that made it (halt_on_error) and is kept in $(TSAN_BUILD)/tsan-reports,
# whoever wrote it (starlingd runs as the service user): any report there fails the run.
# -Wno-tsan: Asio's handler fences (std_fenced_block) are warned about; its real ordering is its
# scheduler's mutex, which ThreadSanitizer sees.
TSAN_BUILD   ?= build-tsan
TSAN_REPORTS  = $(abspath $(TSAN_BUILD))/tsan-reports
.PHONY: tsan
tsan: deps
	@[ -f $(TSAN_BUILD)/build.ninja ] || cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_CXX_FLAGS="-fsanitize=thread -Wno-tsan" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
	    -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DSTARLING_TEST_TIMEOUT_SCALE=4
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	rm -rf $(TSAN_REPORTS) && mkdir -m 1777 $(TSAN_REPORTS)
	cd $(TSAN_BUILD) && STARLING_IO_THREADS=2 \
	    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 log_path=$(TSAN_REPORTS)/report suppressions=$(abspath tests/tsan.supp)" \
	    ctest --output-on-failure -j $(JOBS) --timeout 2400; status=$$?; \
	if ls $(TSAN_REPORTS)/report* >/dev/null 2>&1; then cat $(TSAN_REPORTS)/report*; \
	    echo "make tsan: ThreadSanitizer reports above (kept in $(TSAN_REPORTS))"; exit 1; fi; exit $$status
