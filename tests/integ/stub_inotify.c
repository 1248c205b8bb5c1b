#include "integ.h"
const t_case inotify_tests[] = {T_END};
