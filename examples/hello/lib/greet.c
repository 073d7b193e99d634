#include <stdio.h>

#include "greet.h"

void greet(const char *who, const char *library, int answer)
{
	printf("hello from %s: %s says %d\n", who, library, answer);
}
