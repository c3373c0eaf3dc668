#include <base/version.h>

const char *base_version(void)
{
	return BASE_VERSION;
}
