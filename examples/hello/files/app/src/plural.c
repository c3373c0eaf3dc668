#include <stdio.h>
#include "report.h"

void plural_words(unsigned int n, char *out)
{
	snprintf(out, 16, "%u word%s", n, n == 1 ? "" : "s");
}
