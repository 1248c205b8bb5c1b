#include "integ.h"
const t_case pri_tests[] = {T_END};
