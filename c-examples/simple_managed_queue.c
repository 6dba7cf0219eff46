/*
 * A port of pprocess's examples/simple_managed_queue.py: an N x N grid of
 * calculations by a plain function (calculate_cell in grid.h), each call
 * managed by a queue (pprocess's queue.manage(MakeParallel(calculate))) with
 * pp_exchange_call, at most LIMIT processes at once. The cells come out of
 * the queue with pp_exchange_next in the order they arrive.
 *
 *   PP_DELAY=0.01 ./build/simple_managed_queue   (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

int main(int argc, char **argv)
{
    double started = now();
    int results[N * N] = {0};
    struct task task;
    pp_exchange *queue;

    parse_options(argc, argv, 0);

    check(pp_queue_new(LIMIT, 0, &queue), "pp_queue_new");
    task.delay = delay_seconds();

    puts("Calculating...");
    for (task.i = 0; task.i < N; task.i++)
        for (task.j = 0; task.j < N; task.j++)
            check(pp_exchange_call(queue, calculate_cell, &task, sizeof task,
                                   sizeof(struct cell)),
                  "pp_exchange_call");

    puts("Finishing...");
    collect_cells(queue, results);
    pp_exchange_free(queue);

    print_grid(results, started);
    return EXIT_SUCCESS;
}
