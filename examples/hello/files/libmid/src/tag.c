#include <base/checksum.h>
#include <mid/mid.h>

void mid_tag(const char *s, char out[9])
{
	base_hex(base_checksum(s), out);
}
