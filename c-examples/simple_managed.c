/*
 * A port of pprocess's examples/simple_managed.py: an N x N grid of
 * calculations by a plain function (calculate_cell in grid.h), each call
 * managed by an exchange (pprocess's exchange.manage(MakeParallel(calculate)))
 * with pp_exchange_call: it runs in a new process, at most LIMIT at once,
 * and the other calls wait. The exchange's store callback (pprocess's
 * MyExchange.store_data) puts each cell in the grid.
 *
 *   PP_DELAY=0.01 ./build/simple_managed    (the default delay is 1 second)
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
            check(pp_exchange_call(ex, calculate_cell, &task, sizeof task, sizeof(struct cell)),
                  "pp_exchange_call");

    puts("Finishing...");
    check(pp_exchange_finish(ex), "pp_exchange_finish");
    pp_exchange_free(ex);

    print_grid(results, started);
    return EXIT_SUCCESS;
}
