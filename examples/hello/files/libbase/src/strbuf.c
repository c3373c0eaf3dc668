#include <string.h>
#include <base/strbuf.h>

void strbuf_init(struct strbuf *sb)
{
	sb->text[0] = '\0';
	sb->len = 0;
}

void strbuf_addc(struct strbuf *sb, char c)
{
	if (sb->len + 1 < STRBUF_SIZE) {
		sb->text[sb->len++] = c;
		sb->text[sb->len] = '\0';
	}
}

void strbuf_add(struct strbuf *sb, const char *s)
{
	while (*s != '\0')
		strbuf_addc(sb, *s++);
}

const char *strbuf_str(const struct strbuf *sb)
{
	return sb->text;
}
