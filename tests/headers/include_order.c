/* Must NOT compile: a system header before evloop.h in the implementation file.  `make
   check-headers` expects the build to stop with evloop's own #error line about include order. */
#include <stdio.h>
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"

int main(void) { return 0; }
