#include <base/checksum.h>

unsigned int base_checksum(const char *s)
{
	unsigned int h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}
