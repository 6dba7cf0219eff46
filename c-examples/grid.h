/*
 * Shared by the simple_* examples: the work of pprocess's example programs
 * (an N x N grid of "calculations", cell (i, j) = i*N + j after a delay),
 * timing, error handling, and the output format of the Python originals.
 *
 * The including file defines _POSIX_C_SOURCE before any #include.
 */
#ifndef GRID_H
#define GRID_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pprocess.h"

enum {
    N = 10,     /* the grid is N x N */
    LIMIT = 10  /* at most LIMIT processes at once */
};

/* One calculated cell: the fixed-layout message a worker sends back. */
struct cell {
    int32_t i, j, value;
};

/* Exits with pprocess's description of rc if a call failed. */
static inline void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, pp_strerror(rc));
        exit(EXIT_FAILURE);
    }
}

/* Seconds on a clock that never jumps. */
static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The delay of one calculation: 1 second, as in the original, or the
 * PP_DELAY environment variable (seconds, e.g. PP_DELAY=0.01). */
static inline double delay_seconds(void)
{
    const char *text = getenv("PP_DELAY");
    char *end;
    double seconds;

    if (text == NULL)
        return 1.0;
    errno = 0;
    seconds = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(seconds >= 0 && seconds <= 3600)) {
        fprintf(stderr, "PP_DELAY: expected seconds (e.g. 0.01), got \"%s\"\n", text);
        exit(EXIT_FAILURE);
    }
    return seconds;
}

/* Sleeps for `seconds`, resuming after signals. */
static inline void sleep_seconds(double seconds)
{
    struct timespec left;

    left.tv_sec = (time_t)seconds;
    left.tv_nsec = (long)((seconds - (double)left.tv_sec) * 1e9);
    while (nanosleep(&left, &left) < 0 && errno == EINTR)
        continue;
}

/* The "supposedly time-consuming calculation" of cell (i, j). */
static inline struct cell calculate(int32_t i, int32_t j, double delay)
{
    struct cell cell;

    sleep_seconds(delay);
    cell.i = i;
    cell.j = j;
    cell.value = i * N + j;
    return cell;
}

/* Prints the grid row by row, as the Python examples do, then the time
 * taken since `started` (Python prints str(float): 12 significant digits). */
static inline void print_grid(const int results[N * N], double started)
{
    int i, j;

    for (i = 0; i < N; i++) {
        for (j = 0; j < N; j++)
            printf(j == 0 ? "%d" : " %d", results[i * N + j]);
        putchar('\n');
    }
    printf("Time taken: %.12g\n", now() - started);
}

#endif /* GRID_H */
