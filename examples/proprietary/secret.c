/* secret.c: the "proprietary" library's implementation. Built as a shared
 * object with a soname, as vendors ship them. */
#include "secret.h"

const char *secret_version(void) { return "secret-lib 1.0"; }

int secret_answer(void) { return 42; }
