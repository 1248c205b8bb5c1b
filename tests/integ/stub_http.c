#include "integ.h"
const t_case http_tests[] = {T_END};
