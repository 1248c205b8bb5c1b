/* Debian ships the MIPS C library for the hard-float ABIs only, and its <gnu/stubs.h> asks for this
   file under soft-float.  test_ctx_free.c links no C library: see stubs-lp64.h. */
