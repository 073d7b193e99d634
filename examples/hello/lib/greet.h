/* greet.h: the example's own static library (libgreet.a). */
#ifndef GREET_H
#define GREET_H

/* greet prints "hello from WHO: LIBRARY says ANSWER" on stdout. */
void greet(const char *who, const char *library, int answer);

#endif
