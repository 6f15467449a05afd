# rhip — the two commands a fresh Debian 12 machine needs:
#   make run    install what is missing, build (Release), serve the demo region on http://127.0.0.1:8080
#   make test   install what is missing, build, run the whole test suite
BUILD   ?= build
DATA    ?= data/demo
PORT    ?= 8080
JOBS    ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: run test deps build configure bench clean format

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DRHIP_BUILD_TESTS=ON $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@$(BUILD)/rhip demo --data $(DATA) --port $(PORT)

test: build
	@bash scripts/run-tests.sh $(BUILD)

bench: build
	@echo "see bench/README.md"

format:
	@clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf $(BUILD)
