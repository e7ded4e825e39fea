/* A process whose wall clock is off, for tests: loaded with LD_PRELOAD, it moves the real-time
 * clocks (clock_gettime's CLOCK_REALTIME and CLOCK_REALTIME_COARSE, gettimeofday, time) by
 * FAKECLOCK_OFFSET_SECONDS, as on a host whose clock is that far ahead (or behind, when
 * negative). The monotonic clocks are left alone, as NTP leaves them. Every caller in the
 * process sees it: Python's time.time() and datetime.now(), and the servers' Date headers.
 * Built by tests/integration/fakeclock.py; not part of any product. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long offset_seconds;
static int (*real_clock_gettime)(clockid_t, struct timespec *);
static int (*real_gettimeofday)(struct timeval *, void *);

__attribute__((constructor)) static void load(void) {
    const char *given = getenv("FAKECLOCK_OFFSET_SECONDS");
    offset_seconds = given ? atol(given) : 0;
    real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    real_gettimeofday = dlsym(RTLD_NEXT, "gettimeofday");
}

int clock_gettime(clockid_t clock, struct timespec *now) {
    int failed = real_clock_gettime(clock, now);
    if (!failed && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
        now->tv_sec += offset_seconds;
    }
    return failed;
}

int gettimeofday(struct timeval *now, void *zone) {
    int failed = real_gettimeofday(now, zone);
    if (!failed && now != NULL) {
        now->tv_sec += offset_seconds;
    }
    return failed;
}

time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out != NULL) {
        *out = now.tv_sec;
    }
    return now.tv_sec;
}
