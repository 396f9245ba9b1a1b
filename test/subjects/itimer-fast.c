/* The itimer subject with a 1 ms timer: SIGALRMs arrive during the dump's own stops (see itimer.c). */
#define INTERVAL_US 1000
#include "itimer.c"
