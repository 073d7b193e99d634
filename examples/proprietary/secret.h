/* secret.h: the public header of a small "proprietary" shared library that
 * exists only on the build host (installed under $(PREFIX), by default
 * /opt/proprietary), never inside the agents' containers. */
#ifndef SECRET_H
#define SECRET_H

/* secret_version returns a static string such as "secret-lib 1.0". */
const char *secret_version(void);

/* secret_answer returns the library's closely guarded number. */
int secret_answer(void);

#endif
