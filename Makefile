# The two set-up commands of the README. Everything else is CMake + Ninja under build/.
BUILD ?= build
DATA  ?= var
JOBS  ?= 2

.PHONY: run test build deps clean
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
