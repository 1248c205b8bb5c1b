# evloop - see README.md.  GNU make.
CC      ?= gcc
CFLAGS  ?= -O2 -g
WARN    := -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wconversion
TEST_SRC := $(wildcard tests/*.c)
HEADERS := evloop.h evloop_epoll.h

build/test: $(TEST_SRC) tests/t.h $(HEADERS)
	@mkdir -p build
	$(CC) $(CFLAGS) $(WARN) -Wno-conversion -pthread $(TEST_SRC) -o $@

test: build/test
	./build/test

.PHONY: test
