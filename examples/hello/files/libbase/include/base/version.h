/* libbase's version, as a macro for compile time and a function for run time. */
#ifndef BASE_VERSION_H
#define BASE_VERSION_H

#define BASE_VERSION "1.2"

const char *base_version(void);

#endif
