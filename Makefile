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
#   make check-kqueue-emul   the kqueue emulation for Linux (tests/kqueue) against its own tests;
#                   part of check
#   make check-kqueue  the whole suite on the kqueue backend (evloop_kqueue.h) over that emulation,
#                   in its FreeBSD, macOS and no-EVFILT_EXCEPT flavours and under ASan; part of check
#   make check-macos   the implementation, the suite and the examples compiled and linked for macOS
#                   (x86_64 and arm64) against the real SDK that zig carries; nothing runs them
#   make check-poll the whole suite on the poll backend (evloop_poll.h), in both of its paths, under
#                   the sanitizers and valgrind, with musl; part of check
#   make check-integrations  MQTT, HTTP, DNS, serial, GPIO-style EVL_PRI, inotify and GLib, each
#                   against a real peer its test starts (tests/integ, docs/); part of check
#   make check-files  the file operations suite (tests/test_files.c) on each engine: io_uring,
#                   the worker threads (io_uring_setup refused by --nosys) and inline, under
#                   ASan+UBSan, TSan (workers) and valgrind, on the poll and kqueue backends,
#                   built without io_uring (EVLOOP_NO_IO_URING), one io_uring_enter per iteration
#                   counted by strace, io_uring_enter refused for a while, and the implementation
#                   built without file operations; part of check
#   make check-iocp the suite on the IOCP backend (evloop_iocp.h), built with mingw-w64 and run
#                   under wine, and the Windows echo example; part of check
#   make check-model, check-fuzz, check-faults, check-load, check-soak   robustness (tests/robust):
#                   model-based random testing, libFuzzer, strace fault injection, load and a 60 s
#                   soak, at CI sizes; part of check
#   make stress     the same at full size; make soak DURATION=s; make fuzz SECONDS=s
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
# missing (KQEMU_NOSYS=1).  Part of check (a few seconds), and run again by check-kqueue.

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

check: check-kqueue-emul

# ---- kqueue backend -----------------------------------------------------------------------------
# The whole suite on evloop_kqueue.h over the emulation above, in each of its flavours: FreeBSD
# (also without epoll_pwait2 and pidfd_open, both ways), FreeBSD without EVFILT_EXCEPT (EVL_PRI is
# -ENOSYS), macOS (signals through the handler), the pipe wake-up of systems without EVFILT_USER,
# and once under ASan+UBSan.  Then the implementation through the header checks (check-headers).
# No real kqueue runs here: check-macos links the suite against the real macOS SDK.

KQ_SRC   = $(TEST_SRC) tests/kqueue/kqueue.c
KQ_DEPS  = $(KQ_SRC) tests/t.h $(HEADERS) evloop_kqueue.h tests/kqueue/sys/event.h
KQ_FLAGS = -DEVLOOP_BACKEND_KQUEUE -Itests/kqueue
KQ_BUILD = $(CC) $(OPT) $(TESTWARN) $(KQ_FLAGS) -pthread

$(B)/kqueue/test: $(KQ_DEPS)
	@mkdir -p $(B)/kqueue
	$(KQ_BUILD) $(KQ_SRC) -o $@ -lm
$(B)/kqueue/test-noexcept: $(KQ_DEPS)
	@mkdir -p $(B)/kqueue
	$(KQ_BUILD) -DKQEMU_NO_EXCEPT $(KQ_SRC) -o $@ -lm
$(B)/kqueue/test-macos: $(KQ_DEPS)
	@mkdir -p $(B)/kqueue
	$(KQ_BUILD) -DKQEMU_MACOS $(KQ_SRC) -o $@ -lm
$(B)/kqueue/test-pipe: $(KQ_DEPS)
	@mkdir -p $(B)/kqueue
	$(KQ_BUILD) -DEVLOOP_KQUEUE_PIPE_WAKEUP $(KQ_SRC) -o $@ -lm
$(B)/kqueue/test-asan: $(KQ_DEPS)
	@mkdir -p $(B)/kqueue
	$(CLANG) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	    $(TESTWARN) $(KQ_FLAGS) -pthread $(KQ_SRC) -o $@ -lm

KQ_TESTS = $(addprefix $(B)/kqueue/,test test-noexcept test-macos test-pipe test-asan)

check-kqueue: $(KQ_TESTS)
	@echo "== kqueue backend on the emulation: FreeBSD flavour"
	./$(B)/kqueue/test
	@echo "== kqueue backend: FreeBSD flavour, the emulation without epoll_pwait2 and pidfd_open"
	KQEMU_NOSYS=1 ./$(B)/kqueue/test
	./$(B)/kqueue/test --nosys
	@echo "== kqueue backend: FreeBSD without EVFILT_EXCEPT"
	./$(B)/kqueue/test-noexcept
	@echo "== kqueue backend: macOS flavour"
	./$(B)/kqueue/test-macos
	@echo "== kqueue backend: wake-ups through a pipe (EVLOOP_KQUEUE_PIPE_WAKEUP)"
	./$(B)/kqueue/test-pipe
	@echo "== kqueue backend: the file suite on worker threads (the other runs are inline)"
	EVL_TEST_FILE_ENGINE=workers ./$(B)/kqueue/test suite=files
	@echo "== kqueue backend: under AddressSanitizer + UndefinedBehaviorSanitizer (clang)"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$(B)/kqueue/test-asan

# The header checks of check-headers for evloop_kqueue.h, against the emulation's <sys/event.h>,
# in its flavours (the real macOS headers: check-macos).
check-kqueue-headers: $(HEADERS) evloop_kqueue.h tests/kqueue/sys/event.h tests/headers/impl.c tests/headers/use.c tests/headers/static.c
	@echo "== headers with the kqueue backend (emulated <sys/event.h>): C99, C11 and C++, every warning an error"
	@mkdir -p $(B)/headers-kqueue
	@set -e; for variant in "" -DKQEMU_MACOS; do \
	    for pair in $(HDR_C); do cc=$${pair%%:*}; std=$${pair##*:}; o=$(B)/headers-kqueue/$$cc-$$std$$variant; \
	    flags="-std=$$std -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror $(OPT) $(KQ_FLAGS) $$variant"; \
	    echo "   $$cc $$flags"; \
	    $$cc $$flags -c tests/headers/impl.c -o $$o-impl.o; \
	    $$cc $$flags -c tests/headers/use.c -o $$o-use.o; \
	    $$cc $$flags -c tests/headers/static.c -o $$o-static.o; done; \
	    for pair in $(HDR_CXX); do cxx=$${pair%%:*}; std=$${pair##*:}; o=$(B)/headers-kqueue/$$cxx-$$std$$variant; \
	    flags="-std=$$std -Wall -Wextra -Werror $(OPT) $(KQ_FLAGS) $$variant"; \
	    echo "   $$cxx $$flags"; \
	    $$cxx $$flags -x c++ -c tests/headers/impl.c -o $$o-impl.o; \
	    $$cxx $$flags -x c++ -c tests/headers/static.c -o $$o-static.o; done; done
	@set -e; for variant in -DKQEMU_NO_EXCEPT -DEVLOOP_KQUEUE_PIPE_WAKEUP; do \
	    flags="$(STRICT) -Werror $(OPT) $(KQ_FLAGS) $$variant"; echo "   $(CC) $$flags"; \
	    $(CC) $$flags -c tests/headers/impl.c -o $(B)/headers-kqueue/impl$$variant.o; done
	@for opt in -O0 -O2; do $(CC) -std=c99 $$opt $(KQ_FLAGS) -c tests/headers/impl.c -o $(B)/headers-kqueue/alloc$$opt.o; \
	    if nm -u $(B)/headers-kqueue/alloc$$opt.o | grep -wE 'malloc|calloc|realloc|free|strdup'; then \
	        echo "   the kqueue backend references heap allocation ($$opt)"; exit 1; fi; done; \
	    echo "   no heap allocation (-O0, -O2)"

.PHONY: check-kqueue check-kqueue-headers
check: check-kqueue
check-headers: check-kqueue-headers

# ---- macOS (the real SDK, through zig) ----------------------------------------------------------
# zig's C compiler carries the macOS headers and links Mach-O executables.  For both Mac CPUs: the
# implementation (the kqueue backend, the Darwin forms of the fiber switch) with the strict flags
# as C99 and C11 and as C++, then the whole test suite and every example that builds on macOS,
# linked, every warning an error.  Nothing here can run them.

MAC_TARGETS  = x86_64-macos aarch64-macos
LLVM_NM      = llvm-nm                  # reads Mach-O, which binutils' nm may not
MAC_EXAMPLES = $(filter-out file_copy_noring,$(EXAMPLES))

check-macos: $(TEST_SRC) tests/t.h tests/probe.h $(HEADERS) evloop_kqueue.h
	@echo "== macOS SDK (zig cc): the implementation, the test suite and the examples, linked, not run"
	@test -x $(ZIG) || { echo "   no zig at $(ZIG) (.ci/run installs it; or make ZIG=...)"; exit 1; }
	@mkdir -p $(B)/macos
	@set -e; for t in $(MAC_TARGETS); do o=$(B)/macos/$$t; \
	    for std in c99 c11; do echo "   $$t: implementation, -std=$$std $(filter-out -std=c99,$(STRICT)) -Werror"; \
	        $(ZIG) cc -target $$t -std=$$std $(filter-out -std=c99,$(STRICT)) -Werror $(OPT) -c tests/headers/impl.c -o $$o-impl-$$std.o; done; \
	    echo "   $$t: implementation as C++11"; \
	    $(ZIG) c++ -target $$t -std=c++11 -Wall -Wextra -Werror $(OPT) -x c++ -c tests/headers/impl.c -o $$o-impl-cxx.o; \
	    echo "   $$t: the test suite"; \
	    $(ZIG) cc -target $$t $(OPT) $(TESTWARN) -pthread $(TEST_SRC) -o $$o-test -lm; \
	    echo "   $$t: examples: $(MAC_EXAMPLES)"; \
	    for e in $(MAC_EXAMPLES); do $(ZIG) cc -target $$t $(OPT) $(STRICT) -Werror -pthread examples/$$e.c -o $$o-$$e; done; \
	    done
	@$(LLVM_NM) -u $(B)/macos/x86_64-macos-impl-c99.o > $(B)/macos/impl-undefined.txt
	@grep -qw _kevent $(B)/macos/impl-undefined.txt   # the listing is real: the backend calls kevent
	@if grep -wE '_malloc|_calloc|_realloc|_free' $(B)/macos/impl-undefined.txt; then \
	    echo "   the macOS implementation references heap allocation"; exit 1; fi; echo "   no heap allocation (llvm-nm)"

.PHONY: check-macos
check: check-macos

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
# flags, the test suite (tests/win/runner.c runs the suites that build on Windows; its file
# operations inline), the file suite again on worker threads (EVL_TEST_FILE_ENGINE, as check-files),
# the timer tests on the millisecond fallback, and the echo example's client and server talking
# over loopback.
# EVL_TEST_SLOW: wine adds a server round trip to many calls, so timed checks get the bounds they
# have under valgrind and qemu.

WIN_CC   = x86_64-w64-mingw32-gcc
WIN_CXX  = x86_64-w64-mingw32-g++
WIN_TARGET = x86_64-w64-windows-gnu
WINE     = $(shell command -v wine64 || echo /usr/lib/wine/wine64)
WINE_RUN = EVL_TEST_SLOW=1 WINEDEBUG=-all WINEPREFIX=$(CURDIR)/$(B)/wineprefix timeout 600 $(WINE)
WIN_TEST_SRC = tests/impl.c tests/win/runner.c tests/win/test_iocp.c tests/win/test_iocp_internals.c tests/test_loop.c tests/test_io.c \
           tests/test_timer.c tests/test_async.c tests/test_safety.c tests/test_misuse.c tests/test_fiber.c \
           tests/test_files.c tests/test_files_responsive.c
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
	    $(WIN_CC) $$flags -DEVLOOP_NO_FIBERS -c tests/headers/impl.c -o $(B)/iocp/impl-nofibers-$$std.o; \
	    $(WIN_CC) $$flags -DEVLOOP_NO_FILE_OPS -c tests/headers/impl.c -o $(B)/iocp/impl-nofiles-$$std.o; done
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
	EVL_TEST_FILE_ENGINE=inline $(WINE_RUN) $(B)/iocp/test.exe
	@echo "== IOCP: the file operations on worker threads"
	EVL_TEST_FILE_ENGINE=workers $(WINE_RUN) $(B)/iocp/test.exe suite=files
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

# ---- robustness: model-based random testing and fuzzing (issue 12) --------------------------------
# tests/robust/model.c drives the whole watcher API with seeded random operation sequences, each
# callback checked against a reference model (tests/robust/model.h), under ASan+UBSan; a failure
# prints the seed and the sequence shrunk to its shortest failing form.  tests/robust/fuzz_model.c
# feeds libFuzzer's inputs to the same driver, from the seed corpus in tests/robust/corpus.
#   make check-model     10^5 operations (MODEL_SEED=... to replay a run; the default is the time),
#                        then 3*10^4 on the fallbacks (--nosys) and 3*10^4 on the poll backend
#   make stress-model    10^7 operations in STRESS_JOBS parallel runs (part of `make stress`)
#   make fuzz SECONDS=60 libFuzzer for that long; new inputs go to build/robust/fuzz-corpus
#   make check-fuzz      the same for 10 s (part of check)

MODEL_SEED  ?= $(shell date +%s)
MODEL_OPS   ?= 100000
STRESS_OPS  ?= 10000000
STRESS_JOBS ?= 2
SECONDS     ?= 60
ROBUST_DEPS = tests/robust/model.h $(HEADERS)
ROBUST_SAN  = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
ROBUST_ENV  = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
FUZZ_FLAGS  = -handle_usr1=0 -handle_usr2=0 -timeout=20 -max_len=2048

.PHONY: check-model stress-model stress fuzz check-fuzz

$(B)/robust/model-asan: tests/robust/model.c $(ROBUST_DEPS)
	@mkdir -p $(B)/robust
	$(CLANG) $(ROBUST_SAN) $(TESTWARN) -pthread $< -o $@

$(B)/robust/model-poll-asan: tests/robust/model.c $(ROBUST_DEPS) evloop_poll.h
	@mkdir -p $(B)/robust
	$(CLANG) $(ROBUST_SAN) $(TESTWARN) -DEVLOOP_BACKEND_POLL -pthread $< -o $@

$(B)/robust/fuzz_model: tests/robust/fuzz_model.c $(ROBUST_DEPS)
	@mkdir -p $(B)/robust
	$(CLANG) -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(TESTWARN) -pthread $< -o $@

check-model: $(B)/robust/model-asan $(B)/robust/model-poll-asan
	@echo "== model-based random testing: $(MODEL_OPS) operations under ASan+UBSan (seed $(MODEL_SEED))"
	$(ROBUST_ENV) nice ./$(B)/robust/model-asan --ops $(MODEL_OPS) --seed $(MODEL_SEED)
	@echo "== the same on the fallbacks: epoll_pwait2 and pidfd_open refused (timerfd, SIGCHLD)"
	$(ROBUST_ENV) nice ./$(B)/robust/model-asan --nosys --ops $$(( $(MODEL_OPS) * 3 / 10 )) --seed $(MODEL_SEED)
	@echo "== the same on the poll backend"
	$(ROBUST_ENV) nice ./$(B)/robust/model-poll-asan --ops $$(( $(MODEL_OPS) * 3 / 10 )) --seed $(MODEL_SEED)

stress-model: $(B)/robust/model-asan
	@echo "== model-based random testing: $(STRESS_OPS) operations in $(STRESS_JOBS) runs (seed $(MODEL_SEED))"
	@set -e; pids=""; for j in $$(seq 1 $(STRESS_JOBS)); do \
	    $(ROBUST_ENV) nice ./$(B)/robust/model-asan --ops $$(( $(STRESS_OPS) / $(STRESS_JOBS) )) --len 10000 \
	        --seed $$(( $(MODEL_SEED) + $$j )) > $(B)/robust/stress-$$j.out 2>&1 & pids="$$pids $$!"; done; \
	    rc=0; for p in $$pids; do wait $$p || rc=1; done; \
	    for j in $$(seq 1 $(STRESS_JOBS)); do tail -n 2 $(B)/robust/stress-$$j.out; done; \
	    if [ $$rc != 0 ]; then cat $(B)/robust/stress-*.out; fi; exit $$rc

stress: stress-model

fuzz: $(B)/robust/fuzz_model
	@echo "== libFuzzer on the model driver for $(SECONDS) s (new inputs: $(B)/robust/fuzz-corpus)"
	@mkdir -p $(B)/robust/fuzz-corpus
	$(ROBUST_ENV) ./$(B)/robust/fuzz_model $(FUZZ_FLAGS) -max_total_time=$(SECONDS) -print_final_stats=1 \
	    $(B)/robust/fuzz-corpus tests/robust/corpus
	@echo "   corpus: $$(ls $(B)/robust/fuzz-corpus | wc -l) new inputs, $$(ls tests/robust/corpus | wc -l) committed"

check-fuzz:
	@$(MAKE) -s fuzz SECONDS=10

check: check-model check-fuzz
# ---- robustness: load and soak (issue 12) ----------------------------------------------------------
# tests/robust/load.c: an echo server with thousands of loopback connections against a load client
# in a forked process, timers by the hundred thousand restarted at random, signals from threads and
# processes while their watchers are swapped, evl_async_send from 8 threads, children exiting at
# once.  check-load runs CI sizes (also under ASan+UBSan, on the SIGCHLD path with strace refusing
# pidfd_open, and the threaded scenarios under ThreadSanitizer); stress-load the full sizes of the
# issue.  `make soak DURATION=seconds` repeats the mix on one loop and checks that descriptors and
# resident size stay flat; check-soak runs it for 60 s.

LOAD_BUILD = -std=gnu99 -Wall -Wextra -Wpedantic -Wshadow -Werror -pthread
NOPIDFD    = strace -qq -o /dev/null -e trace=pidfd_open -e inject=pidfd_open:error=ENOSYS
DURATION   = 60

.PHONY: check-load stress-load stress soak check-soak

$(B)/robust/load: tests/robust/load.c $(HEADERS)
	@mkdir -p $(B)/robust
	$(CC) $(OPT) $(LOAD_BUILD) $< -o $@
$(B)/robust/load-tsan: tests/robust/load.c $(HEADERS)
	@mkdir -p $(B)/robust
	$(CLANG) -O1 -g -fsanitize=thread $(LOAD_BUILD) $< -o $@
$(B)/robust/load-asan: tests/robust/load.c $(HEADERS)
	@mkdir -p $(B)/robust
	$(CLANG) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all $(LOAD_BUILD) $< -o $@

check-load: $(B)/robust/load $(B)/robust/load-tsan $(B)/robust/load-asan
	@echo "== load, CI sizes (tests/robust/load.c)"
	nice ./$(B)/robust/load
	@echo "== load: the same under AddressSanitizer + UndefinedBehaviorSanitizer"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 nice ./$(B)/robust/load-asan
	@echo "== load: children and signals on the SIGCHLD path (strace makes pidfd_open fail with ENOSYS)"
	nice $(NOPIDFD) ./$(B)/robust/load --sigchld children signals
	@echo "== load: the threaded scenarios under ThreadSanitizer"
	TSAN_OPTIONS=halt_on_error=1 nice ./$(B)/robust/load-tsan async signals

stress-load: $(B)/robust/load $(B)/robust/load-tsan
	@echo "== load, full sizes: 10 000 connections, 1 000 000 timers, 100 000 signals, 1 000 000 sends"
	nice ./$(B)/robust/load --full
	nice $(NOPIDFD) ./$(B)/robust/load --full --sigchld children signals
	TSAN_OPTIONS=halt_on_error=1 nice ./$(B)/robust/load-tsan --full async

stress: stress-load

soak: $(B)/robust/load
	@echo "== soak: the load mix for $(DURATION) s on one loop"
	@nice ./$(B)/robust/load --soak=$(DURATION) > $(B)/robust/soak.out 2>&1 || { cat $(B)/robust/soak.out; exit 1; }
	@tail -n 1 $(B)/robust/soak.out

check-soak:
	@$(MAKE) -s soak DURATION=60

check: check-load check-soak

# ---- robustness: fault injection (issue 12) ----------------------------------------------------------
# tests/robust/faults.sh runs the driver tests/robust/faults.c under strace, failing each system call
# the library makes (found with strace -k) at each of its first FAULTS_K occurrences with each errno
# the call can give, one fault per run, and prints the faults injected by call and errno: on epoll,
# also with the newer calls refused (the fallbacks), and on the poll backend in both of its paths.

FAULTS_K = 6

.PHONY: check-faults stress-faults

$(B)/robust/faults: tests/robust/faults.c $(HEADERS)
	@mkdir -p $(B)/robust
	$(CC) $(OPT) $(LOAD_BUILD) $< -o $@
$(B)/robust/faults-poll: tests/robust/faults.c $(HEADERS) evloop_poll.h
	@mkdir -p $(B)/robust
	$(CC) $(OPT) $(LOAD_BUILD) $(POLL_FLAGS) $< -o $@
$(B)/robust/faults-poll-posix: tests/robust/faults.c $(HEADERS) evloop_poll.h
	@mkdir -p $(B)/robust
	$(CC) $(OPT) $(LOAD_BUILD) $(POLL_FLAGS) -DEVLOOP_POLL_POSIX_ONLY $< -o $@

FAULTS_DRIVERS = $(B)/robust/faults $(B)/robust/faults-poll $(B)/robust/faults-poll-posix

# The four runs wait on strace and the loop more than they compute: they go side by side.
check-faults: $(FAULTS_DRIVERS) tests/robust/faults.sh
	@echo "== fault injection on every system call of the library (strace): epoll with the newer calls,"
	@echo "   epoll without them (first $(FAULTS_K) occurrences); poll with ppoll and eventfd, with poll and a pipe (first 3)"
	@R=$(B)/robust; \
	    nice sh tests/robust/faults.sh $$R/faults $(FAULTS_K) $$R/faults.out new > $$R/faults.log 2>&1 & a=$$!; \
	    nice sh tests/robust/faults.sh $$R/faults $(FAULTS_K) $$R/faults-old.out old > $$R/faults-old.log 2>&1 & b=$$!; \
	    nice sh tests/robust/faults.sh $$R/faults-poll 3 $$R/faults-poll.out new > $$R/faults-poll.log 2>&1 & c=$$!; \
	    nice sh tests/robust/faults.sh $$R/faults-poll-posix 3 $$R/faults-poll-posix.out new > $$R/faults-posix.log 2>&1 & d=$$!; \
	    s=0; for p in $$a $$b $$c $$d; do wait $$p || s=1; done; \
	    cat $$R/faults.log $$R/faults-old.log $$R/faults-poll.log $$R/faults-posix.log; exit $$s

# The driver's phases three times over, each call faulted at up to 30 of its occurrences.
stress-faults: $(FAULTS_DRIVERS) tests/robust/faults.sh
	FAULT_ROUNDS=3 nice sh tests/robust/faults.sh $(B)/robust/faults 30
	FAULT_ROUNDS=3 nice sh tests/robust/faults.sh $(B)/robust/faults-poll 30 $(B)/robust/faults-poll.out new
	FAULT_ROUNDS=3 nice sh tests/robust/faults.sh $(B)/robust/faults-poll-posix 30 $(B)/robust/faults-poll-posix.out new

stress: stress-faults
check: check-faults

# ---- file operations (issue 10) -------------------------------------------------------------------
# tests/test_files.c on each engine.  EVL_TEST_FILE_ENGINE names the engine a run must use (each
# test checks evl_op_engine): io_uring as the kernel offers it; workers and inline with
# io_uring_setup refused by --nosys (ENOSYS, then EPERM as a container's seccomp profile would).

FILES_RUN = EVL_TEST_FILE_ENGINE

$(B)/test-nouring: $(TEST_SRC) tests/t.h $(HEADERS)
	@mkdir -p $(B)
	$(CC) $(OPT) $(TESTWARN) -DEVLOOP_NO_IO_URING -pthread $(TEST_SRC) -o $@ -lm

.PHONY: check-files
check-files: $(B)/test $(B)/test-asan $(B)/test-tsan $(B)/test-poll $(B)/kqueue/test $(B)/test-nouring tests/files/batch.c \
             tests/files/refused.c
	@echo "== file operations on io_uring"
	$(FILES_RUN)=io_uring ./$(B)/test suite=files
	@echo "== file operations on worker threads (io_uring_setup refused: ENOSYS)"
	$(FILES_RUN)=workers ./$(B)/test --nosys suite=files
	@echo "== file operations inline (io_uring_setup refused: EPERM, no workers)"
	$(FILES_RUN)=inline ./$(B)/test --nosys=EPERM suite=files
	@echo "== file operations under AddressSanitizer + UndefinedBehaviorSanitizer: io_uring, workers"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(FILES_RUN)=io_uring ./$(B)/test-asan suite=files
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(FILES_RUN)=workers ./$(B)/test-asan --nosys suite=files
	@echo "== file operations on worker threads under ThreadSanitizer"
	TSAN_OPTIONS=halt_on_error=1 $(FILES_RUN)=workers ./$(B)/test-tsan --nosys suite=files
	@echo "== file operations under valgrind: io_uring, workers"
	EVL_TEST_SLOW=1 EVL_TEST_TIMEOUT=300 $(FILES_RUN)=io_uring $(VALGRIND) -q --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite ./$(B)/test suite=files
	EVL_TEST_SLOW=1 EVL_TEST_TIMEOUT=300 $(FILES_RUN)=workers $(VALGRIND) -q --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite ./$(B)/test --nosys suite=files
	@echo "== file operations on the poll backend: workers, inline"
	$(FILES_RUN)=workers ./$(B)/test-poll suite=files
	$(FILES_RUN)=inline ./$(B)/test-poll suite=files
	@echo "== file operations on the kqueue backend (the emulation): workers, inline"
	$(FILES_RUN)=workers ./$(B)/kqueue/test suite=files
	$(FILES_RUN)=inline ./$(B)/kqueue/test suite=files
	@echo "== file operations built without io_uring (EVLOOP_NO_IO_URING): workers, inline"
	$(FILES_RUN)=workers ./$(B)/test-nouring suite=files
	$(FILES_RUN)=inline ./$(B)/test-nouring suite=files
	@echo "== the implementation built without file operations (EVLOOP_NO_FILE_OPS)"
	@mkdir -p $(B)/files
	$(CC) $(STRICT) -Werror $(OPT) -DEVLOOP_NO_FILE_OPS -c tests/headers/impl.c -o $(B)/files/impl-no-file-ops.o
	@echo "== operations started in one iteration go to the kernel in one io_uring_enter (strace)"
	@$(CC) -O2 $(STRICT) -Werror -pthread tests/files/batch.c -o $(B)/files/batch
	@strace -f -c -o $(B)/files/batch.strace ./$(B)/files/batch > $(B)/files/batch.out
	@awk '$$NF=="io_uring_enter"{e=$$4} $$NF=="io_uring_setup"{s=$$4} END{getline out < "$(B)/files/batch.out"; \
	    split(out, f, " "); printf "   %s: %d operations in %d rounds, %d io_uring_enter, %d io_uring_setup\n", f[1], f[2], f[3], e, s; \
	    exit !(f[1]=="io_uring" && e==f[3] && s==1)}' $(B)/files/batch.strace
	@echo "== io_uring_enter refused for a while (EAGAIN, EBUSY): handed over later, and evl_deinit still waits"
	@$(CC) -O2 $(STRICT) -Werror -pthread tests/files/refused.c -o $(B)/files/refused -ldl
	@./$(B)/files/refused > $(B)/files/refused.out; rc=$$?; sed 's/^/   /' $(B)/files/refused.out; exit $$rc

check: check-files
