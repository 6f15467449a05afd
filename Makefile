# rhip — the two commands a fresh Debian 12 machine needs:
#   make run    install what is missing, build (Release), serve the demo region on http://127.0.0.1:8080
#   make test   install what is missing, build, run the whole test suite
BUILD   ?= build
DATA    ?= data/demo
PORT    ?= 8080
JOBS    ?= $(shell nproc)
CMAKE_FLAGS ?=
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME  ?= 600
FUZZ_TARGETS ?= fhir_json search hl7 id_card name

.PHONY: run test deps build configure bench clean format fuzz-build fuzz

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

# libFuzzer targets (docs/SECURITY.md "Fuzzing"): a second build with clang,
# ASan and UBSan, only the libraries the targets need. `make fuzz` runs each
# target FUZZ_TIME seconds (two at a time, nice 19); `make test` replays the
# committed corpus instead (fuzz_replay.* in ctest, built by the normal build).
fuzz-build:
	@bash scripts/install-deps.sh fuzz
	@cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
	  -DRHIP_FUZZ=ON -DRHIP_BUILD_TESTS=OFF -DRHIP_BUILD_BENCHMARKS=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target rhip_fuzz_all

fuzz: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ_TARGETS)

bench: build
	@echo "see bench/README.md"

format:
	@clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf $(BUILD)
