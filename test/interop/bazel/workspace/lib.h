#ifndef SPECBUILD_BAZEL_INTEROP_LIB_H
#define SPECBUILD_BAZEL_INTEROP_LIB_H

/* The line //:hello prints; the interop test checks for it verbatim. */
const char *greeting(void);

#endif
