# evloop - build, test and check.  GNU make, nothing else.
#
#   make demo       build and run the demo: an echo server and its client on loopback
#   make test       build the test suite with gcc and run it
#   make check      test, the old-kernel fallbacks (--nosys), clang, ASan+UBSan, valgrind, TSan
#                   on the threaded and fiber tests, the headers warning-free in C99, C11 and
#                   C++, no heap allocation in the implementation, every example, the suite on
#                   aarch64, armhf, armel, riscv64 (qemu-user), i386, musl, with the ucontext
#                   fallback and without fibers, and the quick rows of the board matrix
#   make check-boards  the board matrix in full (tests/boards.sh): the whole suite on MIPS,
#                   PowerPC, s390x, ARM, AArch64 and RISC-V with musl and glibc under qemu-user,
#                   and the context switch in every FPU and ABI variant; CI runs both
#   make footprint  the README's footprint table: .text and struct sizes per CPU
#   make examples   build every example into build/examples/
#   make bench      benchmarks against libev, libevent, libuv and raw epoll (see bench/)
#   make check-kqueue-emul   the kqueue emulation for Linux (tests/kqueue) against its own tests
#   make check-poll the whole suite on the poll backend (evloop_poll.h), in both of its paths, under
#                   the sanitizers and valgrind, with musl; part of check
#   make check-integrations  MQTT, HTTP, DNS, serial, GPIO-style EVL_PRI, inotify and GLib, each
#                   against a real peer its test starts (tests/integ, docs/); part of check
#   make install    the headers and evloop.pc (PREFIX=/usr/local, DESTDIR=)
#   make clean

CC       = gcc
CLANG    = clang
CXX      = g++
CLANGXX  = clang++
VALGRIND = valgrind
ZIG      = /opt/zig/package/zig
JOBS     = 2
OPT      = -O2 -g
STRICT   = -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wconversion
# The tests hold the library to STRICT through the header; their own code is checked without
# -Wconversion, which would only add casts to test arithmetic.
TESTWARN = -std=gnu99 -Wall -Wextra -Wpedantic -Wshadow -Werror

HEADERS  = evloop.h evloop_epoll.h
TEST_SRC = $(wildcard tests/*.c)
EXAMPLES = demo echo_server timers signals children async hooks embed fiber_echo serial_fiber file_copy \
           file_copy_noring
B        = build

.PHONY: all test check examples demo bench bench-quick clean \
        check-test check-nosys check-clang check-asan check-tsan check-valgrind check-headers \
        check-alloc check-examples check-docs check-cross check-switch check-kqueue-emul check-boards footprint

all: $(B)/test examples

# ---- tests ------------------------------------------------------------------------------------

$(B)/test: $(TEST_SRC) tests/t.h $(HEADERS)
	@mkdir -p $(B)
	$(CC) $(OPT) $(TESTWARN) -pthread $(TEST_SRC) -o $@ -lm

$(B)/test-clang: $(TEST_SRC) tests/t.h $(HEADERS)
	@mkdir -p $(B)
	$(CLANG) $(OPT) $(TESTWARN) -pthread $(TEST_SRC) -o $@ -lm

$(B)/test-asan: $(TEST_SRC) tests/t.h $(HEADERS)
	@mkdir -p $(B)
	$(CLANG) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	    $(TESTWARN) -pthread $(TEST_SRC) -o $@ -lm

$(B)/test-tsan: $(TEST_SRC) tests/t.h $(HEADERS)
	@mkdir -p $(B)
	$(CLANG) -O1 -g -fsanitize=thread $(TESTWARN) -pthread $(TEST_SRC) -o $@ -lm

test: $(B)/test
	./$(B)/test

# The tests that involve threads, signal handlers or fibers, for ThreadSanitizer.
TSAN_TESTS = thread signal async wake stop_from fork suite=fiber suite=internals

check-test: $(B)/test
	@echo "== test suite (gcc)"
	./$(B)/test
check-nosys: $(B)/test
	@echo "== test suite with epoll_pwait2 and pidfd_open failing with ENOSYS (gcc)"
	./$(B)/test --nosys
	@echo "== the same with them failing with EPERM, as container sandboxes refuse them (gcc)"
	./$(B)/test --nosys=EPERM
check-clang: $(B)/test-clang
	@echo "== test suite (clang)"
	./$(B)/test-clang
check-asan: $(B)/test-asan
	@echo "== test suite under AddressSanitizer + UndefinedBehaviorSanitizer (clang)"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$(B)/test-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./$(B)/test-asan --nosys
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./$(B)/test-asan --nosys=EPERM
check-tsan: $(B)/test-tsan
	@echo "== threaded tests under ThreadSanitizer (clang)"
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/test-tsan $(TSAN_TESTS)
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/test-tsan --nosys $(TSAN_TESTS)
	@echo "== the context switch alone under the sanitizers"
	@mkdir -p $(B)/ctx
	$(CLANG) -O1 -g -fsanitize=thread $(STRICT) -Werror tests/ctx/test_ctx.c tests/ctx/test_ctx_tu2.c -o $(B)/ctx/test_ctx-tsan -lm
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/ctx/test_ctx-tsan > $(B)/ctx/tsan.out; tail -n 1 $(B)/ctx/tsan.out
	$(CLANG) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all $(STRICT) -Werror \
	    tests/ctx/test_ctx.c tests/ctx/test_ctx_tu2.c -o $(B)/ctx/test_ctx-asan -lm
	ASAN_OPTIONS=detect_stack_use_after_return=1 ./$(B)/ctx/test_ctx-asan > $(B)/ctx/asan.out; tail -n 1 $(B)/ctx/asan.out
check-valgrind: $(B)/test
	@echo "== test suite under valgrind"
	EVL_TEST_SLOW=1 EVL_TEST_TIMEOUT=300 $(VALGRIND) -q --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite ./$(B)/test

# ---- headers ---------------------------------------------------------------------------------
# Each language mode compiles the implementation alone, a file that only declares (linked with the
# implementation and run), and an EVLOOP_STATIC program, with every warning an error.

HDR_C   = $(CC):c99 $(CC):c11 $(CLANG):c99 $(CLANG):c11
HDR_CXX = $(CXX):c++11 $(CXX):c++17 $(CLANGXX):c++11

check-headers: $(HEADERS) tests/headers/impl.c tests/headers/use.c tests/headers/static.c
	@echo "== headers: C99, C11 and C++ with every warning an error"
	@mkdir -p $(B)/headers
	@set -e; for pair in $(HDR_C); do cc=$${pair%%:*}; std=$${pair##*:}; o=$(B)/headers/$$cc-$$std; \
	    flags="-std=$$std -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror $(OPT)"; \
	    echo "   $$cc $$flags"; \
	    $$cc $$flags -c tests/headers/impl.c -o $$o-impl.o; \
	    $$cc $$flags tests/headers/use.c $$o-impl.o -o $$o-use; ./$$o-use > /dev/null; \
	    $$cc $$flags tests/headers/static.c -o $$o-static; ./$$o-static; done
	@if $(CC) -std=c99 -c tests/headers/include_order.c -o $(B)/headers/order.o 2> $(B)/headers/order.err; then \
	    echo "   a system header before evloop.h compiled: the include-order check is gone"; exit 1; fi; \
	    grep -q 'a system header came before evloop.h' $(B)/headers/order.err; \
	    echo "   a system header before evloop.h stops the build with evloop's #error"
	@set -e; for pair in $(HDR_CXX); do cxx=$${pair%%:*}; std=$${pair##*:}; o=$(B)/headers/$$cxx-$$std; \
	    flags="-std=$$std -Wall -Wextra -Werror $(OPT)"; \
	    echo "   $$cxx $$flags"; \
	    $$cxx $$flags -x c++ -c tests/headers/impl.c -o $$o-impl.o; \
	    $$cxx $$flags -x c++ tests/headers/use.c -x none $$o-impl.o -o $$o-use; ./$$o-use > /dev/null; \
	    $$cxx $$flags -x c++ tests/headers/static.c -o $$o-static; ./$$o-static; done

# The implementation may not call the allocator, at any optimisation level.
check-alloc: $(HEADERS) tests/headers/impl.c
	@echo "== no heap allocation in the implementation"
	@mkdir -p $(B)/headers
	@set -e; for opt in -O0 -O2 -Os; do \
	    $(CC) -std=c99 $$opt -c tests/headers/impl.c -o $(B)/headers/alloc$$opt.o; \
	    if nm -u $(B)/headers/alloc$$opt.o | grep -wE 'malloc|calloc|realloc|free|strdup|reallocarray'; then \
	        echo "   the implementation references heap allocation ($$opt)"; exit 1; fi; done; \
	    echo "   none at -O0, -O2, -Os"

# ---- examples ---------------------------------------------------------------------------------

$(B)/examples/%: examples/%.c $(HEADERS)
	@mkdir -p $(B)/examples
	$(CC) $(OPT) $(STRICT) -Werror -pthread $< -o $@

# file_copy with the ring compiled out, for its runs on the workers and inline.
$(B)/examples/file_copy_noring: examples/file_copy.c $(HEADERS)
	@mkdir -p $(B)/examples
	$(CC) $(OPT) $(STRICT) -Werror -pthread -DEVLOOP_NO_IO_URING $< -o $@

examples: $(addprefix $(B)/examples/,$(EXAMPLES))

demo: $(B)/examples/demo
	./$(B)/examples/demo

# Every example that ends by itself is run, and must succeed.
check-examples: examples
	@echo "== examples"
	@set -e; for e in demo timers signals children async hooks embed "fiber_echo --self-test" serial_fiber; do \
	    echo "   $$e"; timeout 20 ./$(B)/examples/$$e > $(B)/examples/$${e%% *}.out; done
	@head -c 64M /dev/urandom > $(B)/examples/copy-src.bin
	@set -e; for e in file_copy "file_copy_noring --workers 4" file_copy_noring; do \
	    echo "   $$e: a 64 MiB file, compared with cmp"; \
	    timeout 60 ./$(B)/examples/$$e $(B)/examples/copy-src.bin $(B)/examples/copy-dst.bin > $(B)/examples/file_copy.out; \
	    cmp $(B)/examples/copy-src.bin $(B)/examples/copy-dst.bin; sed -n 's/^copied\|^1 ms\|^echo:/      &/p' $(B)/examples/file_copy.out; \
	    done; rm -f $(B)/examples/copy-src.bin $(B)/examples/copy-dst.bin

# The example at the top of evloop.h and every C example in README.md compile warning-free and run.
check-docs: $(HEADERS) README.md
	@echo "== the documented examples"
	@mkdir -p $(B)/docs
	@awk '/^   EXAMPLE$$/{f=1;next} f&&/^   CONFIGURATION/{exit} f&&/^       /{sub(/^       /,"");print}' evloop.h \
	    > $(B)/docs/header_example.c
	@rm -f $(B)/docs/readme_example_*.c
	@awk '/^```c$$/{n++;f=1;next} /^```$$/{f=0} f{print > "$(B)/docs/readme_example_" n ".c"}' README.md
	@set -e; for f in header_example $$(cd $(B)/docs && ls readme_example_*.c | sed 's/\.c$$//'); do \
	    $(CC) $(STRICT) -Werror -I. $(B)/docs/$$f.c -o $(B)/docs/$$f; \
	    echo "   $$f.c: compiles; runs on empty input"; ./$(B)/docs/$$f < /dev/null > /dev/null; done

# A fiber switch makes no system call: 200 000 yields under strace, with no sigprocmask (which
# swapcontext would make per switch) and fewer than one system call per 50 switches in all (the loop
# polls every 128 resumes).  The ucontext build is counted too, to show the test can tell.
check-switch: tests/switch/yields.c $(HEADERS)
	@echo "== a fiber switch makes no system call"
	@mkdir -p $(B)/switch
	@$(CC) -O2 $(STRICT) -Werror tests/switch/yields.c -o $(B)/switch/yields
	@$(CC) -O2 $(STRICT) -Werror -DEVLOOP_FIBER_UCONTEXT tests/switch/yields.c -o $(B)/switch/yields-ucontext
	@set -e; for v in yields yields-ucontext; do \
	    strace -f -c -o $(B)/switch/$$v.strace ./$(B)/switch/$$v > /dev/null; done
	@awk '$$NF=="rt_sigprocmask"{m=$$4} $$NF=="total"{t=$$4} END{printf "   assembly: %d system calls, %d sigprocmask, for 200000 switches\n", t, m; \
	    exit !(m==0 && t<4000)}' $(B)/switch/yields.strace
	@awk '$$NF=="rt_sigprocmask"{m=$$4} END{printf "   ucontext: %d sigprocmask (the fallback, for comparison)\n", m; exit !(m>=200000)}' \
	    $(B)/switch/yields-ucontext.strace

# The suite on every CPU and C library (qemu-user, i386, ucontext, musl, no fibers), and the
# context switch alone on Windows (wine) and RISC-V without an FPU: see tests/matrix.sh.  It ends
# with the quick rows of the board matrix; check-boards runs all of them (tests/boards.sh).
check-cross:
	@echo "== other CPUs, C libraries and configurations"
	ZIG=$(ZIG) JOBS=$(JOBS) sh tests/matrix.sh

check-boards:
	@echo "== the board matrix: every CPU and C library of firmware-like boards, under qemu-user"
	ZIG=$(ZIG) JOBS=$(JOBS) sh tests/boards.sh

footprint:
	@sh tests/footprint.sh

check: check-docs check-headers check-alloc check-test check-nosys check-clang check-asan check-tsan check-valgrind \
       check-examples check-switch check-cross
	@echo "== make check: all passed"

# ---- kqueue emulation -------------------------------------------------------------------------
# kqueue/kevent emulated on Linux, to test a kqueue backend here: its own tests, in each flavour
# (FreeBSD, FreeBSD without EVFILT_EXCEPT, macOS), and with epoll_pwait2 and pidfd_open treated as
# missing (KQEMU_NOSYS=1).  Not part of `check` yet.

KQEMU_SRC   = tests/kqueue/kqueue.c tests/kqueue/test_kqueue_emul.c
KQEMU_DEPS  = $(KQEMU_SRC) tests/kqueue/sys/event.h
KQEMU_BUILD = $(CC) $(OPT) $(TESTWARN) -pthread -Itests/kqueue

$(B)/kqueue/test_kqueue_emul: $(KQEMU_DEPS)
	@mkdir -p $(B)/kqueue
	$(KQEMU_BUILD) $(KQEMU_SRC) -o $@
$(B)/kqueue/test_kqueue_emul-noexcept: $(KQEMU_DEPS)
	@mkdir -p $(B)/kqueue
	$(KQEMU_BUILD) -DKQEMU_NO_EXCEPT $(KQEMU_SRC) -o $@
$(B)/kqueue/test_kqueue_emul-macos: $(KQEMU_DEPS)
	@mkdir -p $(B)/kqueue
	$(KQEMU_BUILD) -DKQEMU_MACOS $(KQEMU_SRC) -o $@

check-kqueue-emul: $(B)/kqueue/test_kqueue_emul $(B)/kqueue/test_kqueue_emul-noexcept $(B)/kqueue/test_kqueue_emul-macos
	@echo "== kqueue emulation: FreeBSD flavour"
	./$(B)/kqueue/test_kqueue_emul
	@echo "== kqueue emulation: FreeBSD flavour, without epoll_pwait2 and pidfd_open"
	KQEMU_NOSYS=1 ./$(B)/kqueue/test_kqueue_emul
	@echo "== kqueue emulation: FreeBSD flavour without EVFILT_EXCEPT"
	./$(B)/kqueue/test_kqueue_emul-noexcept
	@echo "== kqueue emulation: macOS flavour"
	./$(B)/kqueue/test_kqueue_emul-macos

# ---- benchmarks -------------------------------------------------------------------------------

bench:
	$(MAKE) -C bench bench
bench-quick:
	$(MAKE) -C bench bench-quick

clean:
	rm -rf $(B)
	-$(MAKE) -C bench clean 2>/dev/null

# ---- poll backend -----------------------------------------------------------------------------
# The whole suite on evloop_poll.h: gcc, the old-kernel runs (--nosys), ASan+UBSan, valgrind, and
# the plain POSIX path (EVLOOP_POLL_POSIX_ONLY: poll() and a pipe) with more descriptors than one
# batch holds, and with musl.  Then the implementation warning-free in every language mode (under check-headers),
# with musl and an AArch64 cross compiler, and for macOS (zig's SDK): no ppoll, no eventfd there,
# which proves the backend leans on nothing Linux has alone.

POLL_DEPS  = $(TEST_SRC) tests/t.h $(HEADERS) evloop_poll.h
POLL_FLAGS = -DEVLOOP_BACKEND_POLL

$(B)/test-poll: $(POLL_DEPS)
	@mkdir -p $(B)
	$(CC) $(OPT) $(TESTWARN) $(POLL_FLAGS) -pthread $(TEST_SRC) -o $@ -lm
$(B)/test-poll-posix: $(POLL_DEPS)
	@mkdir -p $(B)
	$(CC) $(OPT) $(TESTWARN) $(POLL_FLAGS) -DEVLOOP_POLL_POSIX_ONLY -DEVLOOP_POLL_MAX=100 -pthread $(TEST_SRC) -o $@ -lm
$(B)/test-poll-musl: $(POLL_DEPS)
	@mkdir -p $(B)
	musl-gcc $(OPT) $(TESTWARN) $(POLL_FLAGS) -DEVLOOP_POLL_POSIX_ONLY -static -pthread $(TEST_SRC) -o $@ -lm
$(B)/test-poll-asan: $(POLL_DEPS)
	@mkdir -p $(B)
	$(CLANG) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	    $(TESTWARN) $(POLL_FLAGS) -pthread $(TEST_SRC) -o $@ -lm

check-poll: $(B)/test-poll $(B)/test-poll-posix $(B)/test-poll-musl $(B)/test-poll-asan check-headers-poll
	@echo "== poll backend: test suite (gcc)"
	./$(B)/test-poll
	@echo "== poll backend: with epoll_pwait2 and pidfd_open refused (ENOSYS, EPERM)"
	./$(B)/test-poll --nosys
	./$(B)/test-poll --nosys=EPERM
	@echo "== poll backend: POSIX only (poll and a pipe), EVLOOP_POLL_MAX=100"
	./$(B)/test-poll-posix
	@echo "== poll backend: POSIX only, with musl (static)"
	./$(B)/test-poll-musl
	@echo "== poll backend: under AddressSanitizer + UndefinedBehaviorSanitizer (clang)"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$(B)/test-poll-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./$(B)/test-poll-asan --nosys
	@echo "== poll backend: under valgrind"
	EVL_TEST_SLOW=1 EVL_TEST_TIMEOUT=300 $(VALGRIND) -q --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite ./$(B)/test-poll
	@echo "== poll backend: the examples that end by themselves"
	@mkdir -p $(B)/poll
	@set -e; for e in demo timers signals children async; do echo "   $$e"; \
	    $(CC) $(OPT) $(STRICT) -Werror $(POLL_FLAGS) -pthread examples/$$e.c -o $(B)/poll/$$e; \
	    timeout 20 ./$(B)/poll/$$e > $(B)/poll/$$e.out; done
	@echo "== poll backend: the implementation with musl, AArch64 and for macOS (zig)"
	@mkdir -p $(B)/poll
	musl-gcc $(STRICT) -Werror $(OPT) $(POLL_FLAGS) -c tests/headers/impl.c -o $(B)/poll/impl-musl.o
	aarch64-linux-gnu-gcc $(STRICT) -Werror $(OPT) $(POLL_FLAGS) -c tests/headers/impl.c -o $(B)/poll/impl-aarch64.o
	@set -e; if [ -x $(ZIG) ]; then for t in x86_64-macos aarch64-macos; do \
	    echo "   zig cc -target $$t"; \
	    $(ZIG) cc -target $$t $(STRICT) -Werror $(OPT) $(POLL_FLAGS) -c tests/headers/impl.c -o $(B)/poll/impl-$$t.o; \
	    done; else echo "   (no zig at $(ZIG): macOS compile skipped)"; fi

# The header checks of check-headers, for the poll backend (in both of its paths).
check-headers-poll: $(HEADERS) evloop_poll.h tests/headers/impl.c tests/headers/use.c tests/headers/static.c
	@echo "== headers with the poll backend: C99, C11 and C++ with every warning an error"
	@mkdir -p $(B)/headers-poll
	@set -e; for variant in "" -DEVLOOP_POLL_POSIX_ONLY; do \
	    for pair in $(HDR_C); do cc=$${pair%%:*}; std=$${pair##*:}; o=$(B)/headers-poll/$$cc-$$std$$variant; \
	    flags="-std=$$std -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror $(OPT) $(POLL_FLAGS) $$variant"; \
	    echo "   $$cc $$flags"; \
	    $$cc $$flags -c tests/headers/impl.c -o $$o-impl.o; \
	    $$cc $$flags tests/headers/use.c $$o-impl.o -o $$o-use; ./$$o-use > /dev/null; \
	    $$cc $$flags tests/headers/static.c -o $$o-static; ./$$o-static; done; \
	    for pair in $(HDR_CXX); do cxx=$${pair%%:*}; std=$${pair##*:}; o=$(B)/headers-poll/$$cxx-$$std$$variant; \
	    flags="-std=$$std -Wall -Wextra -Werror $(OPT) $(POLL_FLAGS) $$variant"; \
	    echo "   $$cxx $$flags"; \
	    $$cxx $$flags -x c++ -c tests/headers/impl.c -o $$o-impl.o; \
	    $$cxx $$flags -x c++ tests/headers/use.c -x none $$o-impl.o -o $$o-use; ./$$o-use > /dev/null; \
	    $$cxx $$flags -x c++ tests/headers/static.c -o $$o-static; ./$$o-static; done; done
	@for opt in -O0 -O2; do $(CC) -std=c99 $$opt $(POLL_FLAGS) -c tests/headers/impl.c -o $(B)/headers-poll/alloc$$opt.o; \
	    if nm -u $(B)/headers-poll/alloc$$opt.o | grep -wE 'malloc|calloc|realloc|free|strdup'; then \
	        echo "   the poll backend references heap allocation ($$opt)"; exit 1; fi; done; \
	    echo "   no heap allocation (-O0, -O2)"

.PHONY: check-poll check-headers-poll
check: check-poll
check-headers: check-headers-poll

# ---- IOCP (Windows) -----------------------------------------------------------------------------
# evloop_iocp.h built with mingw-w64 and run under wine: the headers warning-free with the strict
# flags, the test suite (tests/win/runner.c runs the suites that build on Windows), the timer tests
# on the millisecond fallback, and the echo example's client and server talking over loopback.
# EVL_TEST_SLOW: wine adds a server round trip to many calls, so timed checks get the bounds they
# have under valgrind and qemu.

WIN_CC   = x86_64-w64-mingw32-gcc
WIN_CXX  = x86_64-w64-mingw32-g++
WIN_TARGET = x86_64-w64-windows-gnu
WINE     = $(shell command -v wine64 || echo /usr/lib/wine/wine64)
WINE_RUN = EVL_TEST_SLOW=1 WINEDEBUG=-all WINEPREFIX=$(CURDIR)/$(B)/wineprefix timeout 600 $(WINE)
WIN_TEST_SRC = tests/impl.c tests/win/runner.c tests/win/test_iocp.c tests/win/test_iocp_internals.c tests/test_loop.c tests/test_io.c \
           tests/test_timer.c tests/test_async.c tests/test_safety.c tests/test_misuse.c tests/test_fiber.c
WIN_DEPS = $(WIN_TEST_SRC) tests/t.h evloop.h evloop_iocp.h

.PHONY: check-iocp check-iocp-headers

$(B)/iocp/test.exe: $(WIN_DEPS)
	@mkdir -p $(B)/iocp
	$(WIN_CC) $(OPT) $(TESTWARN) $(WIN_TEST_SRC) -o $@ -lws2_32
$(B)/iocp/test-ms.exe: $(WIN_DEPS)
	@mkdir -p $(B)/iocp
	$(WIN_CC) $(OPT) $(TESTWARN) -DEVLOOP_IOCP_NO_HIGH_RESOLUTION_TIMER $(WIN_TEST_SRC) -o $@ -lws2_32
$(B)/iocp/echo.exe: examples/echo_win.c evloop.h evloop_iocp.h
	@mkdir -p $(B)/iocp
	$(WIN_CC) $(OPT) $(STRICT) -Werror $< -o $@ -lws2_32

check-iocp-headers: evloop.h evloop_iocp.h tests/headers/impl.c tests/headers/use.c tests/headers/static.c
	@echo "== IOCP: headers with mingw-w64 gcc and g++ and with clang for Windows, every warning an error"
	@mkdir -p $(B)/iocp
	@set -e; for std in c99 c11; do flags="-std=$$std -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror $(OPT)"; \
	    echo "   $(WIN_CC) $$flags"; \
	    $(WIN_CC) $$flags -c tests/headers/impl.c -o $(B)/iocp/impl-$$std.o; \
	    $(WIN_CC) $$flags tests/headers/use.c $(B)/iocp/impl-$$std.o -o $(B)/iocp/use-$$std.exe -lws2_32; \
	    $(WIN_CC) $$flags tests/headers/static.c -o $(B)/iocp/static-$$std.exe -lws2_32; \
	    $(WIN_CC) $$flags -DEVLOOP_NO_FIBERS -c tests/headers/impl.c -o $(B)/iocp/impl-nofibers-$$std.o; done
	@set -e; for std in c++11 c++17; do flags="-std=$$std -Wall -Wextra -Werror $(OPT)"; \
	    echo "   $(WIN_CXX) $$flags"; \
	    $(WIN_CXX) $$flags -x c++ -c tests/headers/impl.c -o $(B)/iocp/impl-$$std.o; \
	    $(WIN_CXX) $$flags -x c++ tests/headers/use.c -x none $(B)/iocp/impl-$$std.o -static \
	        -o $(B)/iocp/use-$$std.exe -lws2_32; done
	@set -e; for std in c99 c11; do flags="-std=$$std -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror $(OPT)"; \
	    echo "   $(CLANG) --target=$(WIN_TARGET) $$flags (compiled, not linked)"; \
	    $(CLANG) --target=$(WIN_TARGET) $$flags -c tests/headers/impl.c -o $(B)/iocp/impl-clang-$$std.o; done
	$(CLANGXX) --target=$(WIN_TARGET) -std=c++11 -Wall -Wextra -Werror $(OPT) -x c++ -c tests/headers/impl.c \
	    -o $(B)/iocp/impl-clang-c++11.o
	@if nm -u $(B)/iocp/impl-c99.o | grep -wE 'malloc|calloc|realloc|free|strdup'; then \
	    echo "   the implementation references heap allocation"; exit 1; fi; echo "   no heap allocation"

check-iocp: check-iocp-headers $(B)/iocp/test.exe $(B)/iocp/test-ms.exe $(B)/iocp/echo.exe
	@echo "== IOCP backend under wine (a new prefix takes a few seconds once)"
	$(WINE_RUN) $(B)/iocp/use-c99.exe
	$(WINE_RUN) $(B)/iocp/use-c++11.exe
	$(WINE_RUN) $(B)/iocp/test.exe
	@echo "== IOCP: timers and fiber sleeps on the millisecond fallback (no high-resolution timer)"
	$(WINE_RUN) $(B)/iocp/test-ms.exe suite=timer sleep timer_due
	@echo "== IOCP: the echo example, server and client over loopback"
	$(WINE_RUN) $(B)/iocp/echo.exe --self-test

check: check-iocp

# ---- integrations (issue 11) --------------------------------------------------------------------
# Other libraries' sockets and timers on evloop, each against a real peer that its test starts:
# mosquitto (MQTT), python3 -m http.server (libcurl), dnsmasq (c-ares), a pty (serial), priority
# events (GPIO-style EVL_PRI), inotify/fanotify, GLib.  The examples and their glue are in examples/
# and examples/glue/, the pages in docs/.  A missing library or peer is a failure: .ci/run installs
# them.  `make install PREFIX=... DESTDIR=...` installs the headers and evloop.pc.

PKG_CONFIG  ?= pkg-config
INTEG_PKGS   = libmosquitto libcurl libcares glib-2.0
INTEG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(INTEG_PKGS) 2>/dev/null)
INTEG_LIBS   = $(shell $(PKG_CONFIG) --libs $(INTEG_PKGS) 2>/dev/null || echo -lmosquitto -lcurl -lcares -lglib-2.0)
INTEG_SRC    = $(wildcard tests/integ/*.c)
INTEG_GLUE   = $(wildcard examples/glue/*.h)
INTEG_EXAMPLES = mqtt_client http_fetch dns_resolve serial_device gpio_sysfs gpio_chardev inotify_watch glib_embed

.PHONY: check-integrations integ-examples install uninstall check-install

$(B)/integ/test: $(INTEG_SRC) tests/integ/integ.h tests/t.h $(INTEG_GLUE) $(HEADERS)
	@mkdir -p $(B)/integ
	$(CC) $(OPT) $(TESTWARN) $(INTEG_CFLAGS) -pthread $(INTEG_SRC) -o $@ $(INTEG_LIBS) -lm

$(B)/integ/test-asan: $(INTEG_SRC) tests/integ/integ.h tests/t.h $(INTEG_GLUE) $(HEADERS)
	@mkdir -p $(B)/integ
	$(CLANG) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	    $(TESTWARN) $(INTEG_CFLAGS) -pthread $(INTEG_SRC) -o $@ $(INTEG_LIBS) -lm

# The integration examples link their library; each builds warning-free with the library's flags.
$(addprefix $(B)/examples/,$(INTEG_EXAMPLES)): $(B)/examples/%: examples/%.c $(INTEG_GLUE) $(HEADERS)
	@mkdir -p $(B)/examples
	$(CC) $(OPT) $(STRICT) -Werror $(INTEG_CFLAGS) -pthread $< -o $@ $(INTEG_LIBS)

integ-examples: $(addprefix $(B)/examples/,$(INTEG_EXAMPLES))

check-integrations: $(B)/integ/test $(B)/integ/test-asan integ-examples check-install
	@echo "== integrations against real peers (tests/integ)"
	nice ./$(B)/integ/test
	@echo "== the same under AddressSanitizer + UndefinedBehaviorSanitizer (clang)"
	ASAN_OPTIONS=abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 nice ./$(B)/integ/test-asan
	@echo "== the integration examples that end by themselves"
	@set -e; for e in "serial_device --self-test" glib_embed; do \
	    echo "   $$e"; timeout 20 ./$(B)/examples/$$e > $(B)/examples/$${e%% *}.out; done
	@head -c 64M /dev/urandom > $(B)/examples/copy-src.bin
	@set -e; for e in file_copy "file_copy_noring --workers 4" file_copy_noring; do \
	    echo "   $$e: a 64 MiB file, compared with cmp"; \
	    timeout 60 ./$(B)/examples/$$e $(B)/examples/copy-src.bin $(B)/examples/copy-dst.bin > $(B)/examples/file_copy.out; \
	    cmp $(B)/examples/copy-src.bin $(B)/examples/copy-dst.bin; sed -n 's/^copied\|^1 ms\|^echo:/      &/p' $(B)/examples/file_copy.out; \
	    done; rm -f $(B)/examples/copy-src.bin $(B)/examples/copy-dst.bin

check: check-integrations

# ---- install --------------------------------------------------------------------------------------
# Header-only: the headers, and a pkg-config file whose Cflags point at them.

PREFIX     ?= /usr/local
INCLUDEDIR ?= $(PREFIX)/include
PCDIR      ?= $(PREFIX)/share/pkgconfig
VERSION     = $(shell sed -n 's/^\/\* evloop.h - v\([0-9.]*\) .*/\1/p' evloop.h)

install:
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PCDIR)
	install -m 644 evloop.h $(wildcard evloop_*.h) $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    evloop.pc.in > $(DESTDIR)$(PCDIR)/evloop.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/evloop.h $(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(wildcard evloop_*.h)) \
	    $(DESTDIR)$(PCDIR)/evloop.pc

# Installs into a staging directory and builds a program with nothing but pkg-config's flags.
check-install:
	@echo "== make install: headers and evloop.pc, used through pkg-config"
	@rm -rf $(B)/stage
	@$(MAKE) -s install DESTDIR=$(CURDIR)/$(B)/stage PREFIX=/opt/evloop
	@test -f $(B)/stage/opt/evloop/include/evloop.h && test -f $(B)/stage/opt/evloop/include/evloop_epoll.h
	@PKG_CONFIG_PATH=$(CURDIR)/$(B)/stage/opt/evloop/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$(CURDIR)/$(B)/stage \
	    $(PKG_CONFIG) --cflags evloop > $(B)/stage/cflags; \
	    echo "   pkg-config --cflags evloop: $$(cat $(B)/stage/cflags)"; \
	    mkdir -p $(B)/stage/prog; sed -n '/^```c$$/,/^```$$/p' README.md | sed '1d;/^```/q' | sed '/^```/d' > $(B)/stage/prog/main.c; \
	    $(CC) $(STRICT) -Werror $$(cat $(B)/stage/cflags) $(B)/stage/prog/main.c -o $(B)/stage/prog/main && \
	    ./$(B)/stage/prog/main < /dev/null > /dev/null && echo "   README's first program builds against the installed headers and runs"
