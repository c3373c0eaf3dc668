#include <ctype.h>
#include <base/strbuf.h>
#include <mid/mid.h>

void mid_shout(struct strbuf *sb, const char *s)
{
	for (; *s != '\0'; s++)
		strbuf_addc(sb, (char)toupper((unsigned char)*s));
}
