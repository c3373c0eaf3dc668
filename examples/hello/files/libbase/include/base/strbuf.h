/* A fixed-size string builder: the text of every message the app prints. */
#ifndef BASE_STRBUF_H
#define BASE_STRBUF_H

#include <stddef.h>

#define STRBUF_SIZE 256

struct strbuf {
	char text[STRBUF_SIZE];
	size_t len;
};

void strbuf_init(struct strbuf *sb);
void strbuf_add(struct strbuf *sb, const char *s);
void strbuf_addc(struct strbuf *sb, char c);
const char *strbuf_str(const struct strbuf *sb);

#endif
