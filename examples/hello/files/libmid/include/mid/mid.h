/* libmid: greetings built on libbase. Only a forward declaration of libbase's
 * strbuf here, so that compiles that need no libbase header include none. */
#ifndef MID_MID_H
#define MID_MID_H

struct strbuf;

/* Appends "Hello, WHO!" to sb. */
void mid_greet(struct strbuf *sb, const char *who);
/* Appends s to sb, upper-cased. */
void mid_shout(struct strbuf *sb, const char *s);
/* The number of space-separated words in s. */
unsigned int mid_words(const char *s);
/* Writes s's checksum, as 8 hex digits and a NUL, to out. */
void mid_tag(const char *s, char out[9]);
/* "mid 0.3 on base 1.2". */
const char *mid_version(void);

#endif
