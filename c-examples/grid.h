/*
 * Shared by the simple_* examples: the work of pprocess's example programs
 * (an N x N grid of "calculations", cell (i, j) = i*N + j after a delay) in
 * the shapes pprocess runs it (a plain function, a channel-aware callable,
 * an exchange's store_data), collecting results from queues and maps,
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
#include <string.h>
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

/* The argument of one calculation, copied into the process that runs it. */
struct task {
    int32_t i, j;
    double delay;
};

/* The examples' command line: no argument, or, where `persistent` is
 * nonzero, one of --start (start the background work and leave) and
 * --reconnect (collect it, in a later run). Anything else: what is wrong
 * and a usage line on stderr, exit status 2. Returns the option, or NULL. */
static inline const char *parse_options(int argc, char **argv, int persistent)
{
    const char *given = NULL;
    const char *problem = NULL;
    int k;

    for (k = 1; k < argc && problem == NULL; k++) {
        if (!persistent || (strcmp(argv[k], "--start") != 0 && strcmp(argv[k], "--reconnect") != 0))
            problem = "unknown option";
        else if (given != NULL)
            problem = "only one option may be given, not also";
        else
            given = argv[k];
    }
    if (problem == NULL)
        return given;
    fprintf(stderr,
            "%s: %s \"%s\"\n"
            "usage: %s%s  (PP_DELAY=<seconds> sets each calculation's delay, default 1)\n",
            argv[0], problem, argv[k - 1], argv[0], persistent ? " [--start | --reconnect]" : "");
    exit(2);
}

/* Exits naming the persistent address a connect call failed to reach. */
static inline void check_connect(int rc, const char *what, const char *address)
{
    if (rc < 0) {
        fprintf(stderr,
                "%s: cannot connect to \"%s\": %s"
                " (is a process started with --start serving it?)\n",
                what, address, pp_strerror(rc));
        exit(EXIT_FAILURE);
    }
}

/* pp_exchange_connect, or exits naming the address it could not reach. */
static inline void connect_or_exit(pp_exchange *ex, const char *address)
{
    check_connect(pp_exchange_connect(ex, address), "pp_exchange_connect", address);
}

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
        fprintf(stderr,
                "PP_DELAY: expected seconds from 0 to 3600 (e.g. 0.01), got \"%s\"\n"
                "usage: PP_DELAY=<seconds> <example>  (each calculation's delay, default 1)\n",
                text);
        exit(2);
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

/* Prints the value of cell `index` of the grid in its place, as the Python
 * examples do with `print result,` and a bare `print` after each row: one
 * space between values, a newline (and no space) at the end of a row. */
static inline void print_cell(int index, int value)
{
    printf(index % N == 0 ? "%d" : " %d", value);
    if (index % N == N - 1)
        putchar('\n');
}

/* The last line: the time taken since `started` (Python prints str(float):
 * 12 significant digits). */
static inline void print_time(double started)
{
    printf("Time taken: %.12g\n", now() - started);
}

/* Prints the grid row by row, then the time taken since `started`. */
static inline void print_grid(const int results[N * N], double started)
{
    int k;

    for (k = 0; k < N * N; k++)
        print_cell(k, results[k]);
    print_time(started);
}

/* pprocess's MakeParallel(calculate) as a plain function (pp_function):
 * a struct task in, its struct cell out. A nonzero return becomes the
 * task's error (PP_EREMOTE) in the creator. */
static inline int calculate_cell(const void *input, size_t input_len, void *output,
                                 size_t output_cap, size_t *output_len)
{
    struct task task;
    struct cell cell;

    if (input_len != sizeof task || output_cap < sizeof cell)
        return PP_EINVAL;
    memcpy(&task, input, sizeof task);
    cell = calculate(task.i, task.j, task.delay);
    memcpy(output, &cell, sizeof cell);
    *output_len = sizeof cell;
    return 0;
}

/* The same for the examples whose calculate returns just i*N + j: a
 * struct task in, an int32_t out. */
static inline int calculate_value(const void *input, size_t input_len, void *output,
                                  size_t output_cap, size_t *output_len)
{
    struct cell cell;
    size_t len;
    int rc = calculate_cell(input, input_len, &cell, sizeof cell, &len);

    if (rc != 0 || output_cap < sizeof cell.value)
        return rc != 0 ? rc : PP_EINVAL;
    memcpy(output, &cell.value, sizeof cell.value);
    *output_len = sizeof cell.value;
    return 0;
}

/* A channel-aware callable (pp_callable) for pp_exchange_start: calculates
 * the cell of a struct task and sends it to the creator. */
static inline int send_cell(pp_channel *ch, const void *arg, size_t arg_len)
{
    struct task task;
    struct cell cell;

    if (arg_len != sizeof task)
        return PP_EINVAL;
    memcpy(&task, arg, sizeof task);
    cell = calculate(task.i, task.j, task.delay);
    return pp_send(ch, &cell, sizeof cell);
}

/* Ends a process made with pp_exchange_create: sends its result to the
 * creator and leaves with pp_exit, as every created process must, or it
 * would go on running the creator's loop. */
static inline void send_and_exit(pp_channel *ch, const void *data, size_t len)
{
    int rc = pp_send(ch, data, len);

    if (rc < 0)
        fprintf(stderr, "pp_send: %s\n", pp_strerror(rc));
    pp_exit(ch, rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

/* Puts a received cell in the grid; 0, or PP_EPROTO if it is malformed. */
static inline int put_cell(int results[N * N], const struct cell *cell, size_t len)
{
    if (len != sizeof *cell || cell->i < 0 || cell->i >= N || cell->j < 0 || cell->j >= N)
        return PP_EPROTO;
    results[cell->i * N + cell->j] = cell->value;
    return 0;
}

/* pprocess's store_data for an exchange made with pp_exchange_new: receives
 * the cell a ready channel delivers into the grid `ctx` (an int[N * N]).
 * An error returned here comes out of pp_exchange_store/finish. */
static inline int store_cell(pp_exchange *ex, pp_channel *ch, void *ctx)
{
    struct cell cell;
    size_t len;
    int rc = pp_receive(ch, &cell, sizeof cell, &len);

    (void)ex;
    return rc < 0 ? rc : put_cell((int *)ctx, &cell, len);
}

/* Exits with the error of a result taken from a queue or map: a failed
 * task's own code and message when its callable reported one. */
static inline void check_result(const pp_exchange *ex, int rc, const char *what)
{
    int code;
    const char *message;

    if (rc >= 0)
        return;
    if (pp_exchange_task_error(ex, &code, &message) == 1)
        fprintf(stderr, "%s: %s: task failed with code %d: %s\n", what, pp_strerror(rc), code,
                message);
    else
        fprintf(stderr, "%s: %s\n", what, pp_strerror(rc));
    exit(EXIT_FAILURE);
}

/* Puts every cell a queue yields in the grid, in arrival order (pprocess's
 * `for i, j, result in queue: results[i*N+j] = result`). */
static inline void collect_cells(pp_exchange *queue, int results[N * N])
{
    struct cell cell;
    size_t len;
    int rc;

    while ((rc = pp_exchange_next(queue, &cell, sizeof cell, &len)) >= 0)
        check(put_cell(results, &cell, len), "pp_exchange_next");
    if (rc != PP_EDONE)
        check_result(queue, rc, "pp_exchange_next");
}

/* The value of task `index` of a map, waiting only for that task (pprocess's
 * `results[index]`). */
static inline int map_value(pp_exchange *map, size_t index)
{
    int32_t value;
    size_t len;

    check_result(map, pp_map_get(map, index, &value, sizeof value, &len), "pp_map_get");
    if (len != sizeof value)
        check(PP_EPROTO, "pp_map_get");
    return value;
}

/* Prints a map of N * N values in the grid's shape, each as soon as it is in
 * (pprocess slices the map a row at a time: `results[i*N:i*N+N]`), then the
 * time taken. */
static inline void print_map(pp_exchange *map, double started)
{
    int k;

    for (k = 0; k < N * N; k++)
        print_cell(k, map_value(map, (size_t)k));
    print_time(started);
}

#endif /* GRID_H */
