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

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

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
