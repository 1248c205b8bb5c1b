/* Debian ships the RISC-V C library for the lp64d ABI only, and its <gnu/stubs.h> asks for this
   file under lp64.  test_ctx_free.c links no C library: it only needs the declarations that
   evloop.h includes to compile, so this empty stand-in is enough. */
