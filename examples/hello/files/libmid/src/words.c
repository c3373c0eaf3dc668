#include <mid/mid.h>

unsigned int mid_words(const char *s)
{
	unsigned int n = 0;
	int in_word = 0;

	for (; *s != '\0'; s++) {
		if (*s == ' ') {
			in_word = 0;
		} else if (!in_word) {
			in_word = 1;
			n++;
		}
	}
	return n;
}
