#include "lib.h"

const char *greeting(void) { return "hello from bazel via specbuild"; }
