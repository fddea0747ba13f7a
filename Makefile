# sift: `make demo` pulls the default real models and runs the main job; `make test` runs all tests.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
SIFT := $(BUILD)/sift
export SIFT_PYTHON := $(CURDIR)/.venv/bin/python

.PHONY: all setup build test demo fuzz format clean

all: build

setup:
	@scripts/setup.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	@scripts/fetch_test_models.sh $(SIFT)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@scripts/demo.sh $(SIFT)

# libFuzzer on the GGUF reader; FUZZ_SECONDS=600 make fuzz
FUZZ_SECONDS ?= 60
fuzz: setup
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DSIFT_FUZZ=ON -DSIFT_CUDA=OFF -DSIFT_TESTS=OFF
	cmake --build build-fuzz --target fuzz_gguf -j $(JOBS)
	scripts/fuzz.sh build-fuzz/fuzz_gguf $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')

clean:
	rm -rf $(BUILD) build-fuzz
