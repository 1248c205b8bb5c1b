#include "integ.h"
const t_case dns_tests[] = {T_END};
