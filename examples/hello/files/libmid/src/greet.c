#include <base/strbuf.h>
#include <mid/mid.h>

void mid_greet(struct strbuf *sb, const char *who)
{
	strbuf_add(sb, "Hello, ");
	strbuf_add(sb, who);
	strbuf_addc(sb, '!');
}
