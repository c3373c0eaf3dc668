#include <stdio.h>
#include "report.h"

void report(const char *message, const char *details)
{
	printf("%s [%s, app %s]\n", message, details, APP_VERSION);
}
