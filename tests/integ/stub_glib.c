#include "integ.h"
const t_case glib_tests[] = {T_END};
