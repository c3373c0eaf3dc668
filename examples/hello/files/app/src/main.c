/* hello: a greeting built by libmid in libbase's string builder, with its
 * word count (libmid), checksum (libbase via libmid) and every version. */
#include <base/strbuf.h>
#include <mid/mid.h>
#include "report.h"

int main(int argc, char **argv)
{
	const char *who = argc > 1 ? argv[1] : "world";
	struct strbuf msg, details;
	char tag[9], words[16];

	strbuf_init(&msg);
	mid_greet(&msg, who);
	mid_tag(strbuf_str(&msg), tag);
	plural_words(mid_words(strbuf_str(&msg)), words);

	strbuf_init(&details);
	strbuf_add(&details, words);
	strbuf_add(&details, ", tag ");
	mid_shout(&details, tag);
	strbuf_add(&details, ", ");
	strbuf_add(&details, mid_version());
	report(strbuf_str(&msg), strbuf_str(&details));
	return 0;
}
