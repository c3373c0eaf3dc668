#include <base/checksum.h>

void base_hex(unsigned int v, char out[9])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 7; i >= 0; i--) {
		out[i] = digits[v & 0xf];
		v >>= 4;
	}
	out[8] = '\0';
}
