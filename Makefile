# Ferry: the two quick-start commands are `make run` and `make test`.
BUILD_DIR ?= build
JOBS ?= 2
CONFIG ?= examples/ferry.toml

.PHONY: all setup build run test unit clean

all: build

setup:
	@scripts/setup

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja

build: setup $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@echo "ferry: serving $(CONFIG); mail for example.test lands in var/mail/example.test/<user>/new/"
	$(BUILD_DIR)/ferry serve --config $(CONFIG)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -R '^[A-Za-z]+\.' -E '^integration\.'

clean:
	rm -rf $(BUILD_DIR)
