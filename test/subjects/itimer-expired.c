/* The itimer subject with its timer expired and SIGALRM pending at the dump (see itimer.c). */
#define ITIMER_EXPIRED 1
#include "itimer.c"
