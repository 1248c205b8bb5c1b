/* evloop compiled as a plain library object, so run.py can report the .text of the implementation
 * itself beside the archives Debian ships for the peers. */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"
