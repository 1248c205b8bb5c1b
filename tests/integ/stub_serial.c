#include "integ.h"
const t_case serial_tests[] = {T_END};
