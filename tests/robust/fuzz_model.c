/* fuzz_model.c - libFuzzer target: the input is a sequence of operations for the model-based
   driver (model.h), four bytes each, applied to a new loop and checked as model.c checks them.
   Under libFuzzer the runs are short (evl_run for at most 20 us) and no child process is made;
   a failed check aborts, so libFuzzer keeps the input.  Build and run with `make fuzz`. */
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"

#include "model.h"

#define FUZZ_MAX_OPS 512                /* longer inputs are cut: each op may wait a little */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_OPS * M_OP_SIZE) size = FUZZ_MAX_OPS * M_OP_SIZE;
    m_run_sequence(data, size, 1, NULL);
    return 0;
}
