/* The one translation unit of the integration tests with the implementation. */
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"
