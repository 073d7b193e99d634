/* The example program: uses the static libgreet.a from ../lib and the
 * host-only shared libsecret.so, so it only builds (and runs) where the
 * proprietary library is installed: on the build host. */
#include <secret.h>

#include "greet.h"

int main(void)
{
	greet("app", secret_version(), secret_answer());
	return 0;
}
