/* The implementation alone, as a user's evloop.c would be: compiled warning-free with the strict
   flag set in every language mode, and checked for references to heap allocation. */
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"
