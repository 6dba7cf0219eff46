/*
 * A port of pprocess's examples/simple_start.py: an N x N grid of
 * calculations, each run by pp_start in a new process with a channel-aware
 * callable, at most LIMIT at once. The creator gathers the cells with poll(2)
 * over the channels' descriptors (see poll_exchange.h).
 *
 *   PP_DELAY=0.01 ./build/simple_start      (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include "grid.h"
#include "poll_exchange.h"

/* The argument of one calculation, copied into the new process. */
struct task {
    int32_t i, j;
    double delay;
};

/* The channel-aware callable: calculates a cell and sends it to the creator.
 * A nonzero return reaches the creator as PP_EREMOTE with this code. */
static int calculate_cell(pp_channel *ch, const void *arg, size_t arg_len)
{
    struct task task;
    struct cell cell;

    if (arg_len != sizeof task)
        return PP_EINVAL;
    memcpy(&task, arg, sizeof task);
    cell = calculate(task.i, task.j, task.delay);
    return pp_send(ch, &cell, sizeof cell);
}

int main(void)
{
    double started = now();
    int results[N * N] = {0};
    struct exchange ex = {{NULL}, 0, results};
    struct task task;
    pp_channel *ch;

    task.delay = delay_seconds();
    puts("Calculating...");
    for (task.i = 0; task.i < N; task.i++) {
        for (task.j = 0; task.j < N; task.j++) {
            exchange_wait(&ex);
            check(pp_start(calculate_cell, &task, sizeof task, &ch), "pp_start");
            exchange_add(&ex, ch);
        }
    }

    puts("Finishing...");
    exchange_finish(&ex);
    check(pp_waitall(), "pp_waitall");

    print_grid(results, started);
    return EXIT_SUCCESS;
}
