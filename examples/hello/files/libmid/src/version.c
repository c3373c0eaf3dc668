#include <base/version.h>
#include <mid/mid.h>

#define MID_VERSION "0.3"

const char *mid_version(void)
{
	return "mid " MID_VERSION " on base " BASE_VERSION;
}
