/*
 * A port of pprocess's examples/simple_start.py: an N x N grid of
 * calculations, each started on an exchange with pp_exchange_start, which
 * runs a channel-aware callable (send_cell in grid.h) in a new process, at
 * most LIMIT at once; the other calls wait in the exchange's waiting list.
 * The exchange hands each cell to its store callback (pprocess's
 * MyExchange.store_data), which puts it in the grid.
 *
 *   PP_DELAY=0.01 ./build/simple_start      (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

int main(int argc, char **argv)
{
    double started = now();
    int results[N * N] = {0};
    struct task task;
    pp_exchange *ex;

    parse_options(argc, argv, 0);

    check(pp_exchange_new(LIMIT, 0, store_cell, results, &ex), "pp_exchange_new");
    task.delay = delay_seconds();

    puts("Calculating...");
    for (task.i = 0; task.i < N; task.i++)
        for (task.j = 0; task.j < N; task.j++)
            check(pp_exchange_start(ex, send_cell, &task, sizeof task), "pp_exchange_start");

    puts("Finishing...");
    check(pp_exchange_finish(ex), "pp_exchange_finish");
    pp_exchange_free(ex);

    print_grid(results, started);
    return EXIT_SUCCESS;
}
