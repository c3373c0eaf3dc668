/* The app's own formatting: no library header needed. */
#ifndef APP_REPORT_H
#define APP_REPORT_H

#define APP_VERSION "1.0"

/* Prints "MESSAGE [DETAILS, app VERSION]" and a newline. */
void report(const char *message, const char *details);
/* Writes "N word(s)" to out (at least 16 bytes). */
void plural_words(unsigned int n, char *out);

#endif
