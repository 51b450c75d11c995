# outreach: two commands do everything on a fresh Debian 12 machine.
#   make run    install missing packages, build (Release), start outreachd on ./data
#   make test   install missing packages, build, run every test with ctest
BUILD_DIR ?= build
DB        ?= ./data
LISTEN    ?= 127.0.0.1:50051
TIME_ZONE ?= UTC
JOBS      ?= $(shell nproc)

.PHONY: all deps configure build run test clean

all: build

deps:
	./deploy/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	$(BUILD_DIR)/server/outreachd --db $(DB) --listen $(LISTEN) --time-zone $(TIME_ZONE)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS) --timeout 600

clean:
	rm -rf $(BUILD_DIR)
