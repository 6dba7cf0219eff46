/*
 * A port of pprocess's examples/simple_start_queue.py: an N x N grid of
 * calculations, each started on a queue with pp_exchange_start, which runs a
 * channel-aware callable (send_cell in grid.h: what pprocess's
 * MakeParallel(calculate) makes) in a new process, at most LIMIT at once;
 * the other calls wait in the queue's waiting list. The cells come out of
 * the queue with pp_exchange_next in the order they arrive.
 *
 *   PP_DELAY=0.01 ./build/simple_start_queue   (the default delay is 1 second)
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

    /* The original prints no "Calculating..." here. */
    for (task.i = 0; task.i < N; task.i++)
        for (task.j = 0; task.j < N; task.j++)
            check(pp_exchange_start(queue, send_cell, &task, sizeof task), "pp_exchange_start");

    puts("Finishing...");
    collect_cells(queue, results);
    pp_exchange_free(queue);

    print_grid(results, started);
    return EXIT_SUCCESS;
}
