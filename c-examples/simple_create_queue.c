/*
 * A port of pprocess's examples/simple_create_queue.py: an N x N grid of
 * calculations, each in a process made with pp_exchange_create (fork-style)
 * on a queue, once it is below LIMIT processes. The new process calculates
 * its cell, sends it and leaves; the cells come out of the queue with
 * pp_exchange_next in the order they arrive.
 *
 *   PP_DELAY=0.01 ./build/simple_create_queue   (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

int main(int argc, char **argv)
{
    double started = now();
    double delay = delay_seconds();
    int results[N * N] = {0};
    pp_exchange *queue;
    pp_channel *ch;
    int32_t i, j;

    parse_options(argc, argv, 0);

    check(pp_queue_new(LIMIT, 0, &queue), "pp_queue_new");

    puts("Calculating...");
    for (i = 0; i < N; i++) {
        for (j = 0; j < N; j++) {
            int pid = pp_exchange_create(queue, &ch);

            check(pid, "pp_exchange_create");
            if (pid == 0) {
                struct cell cell = calculate(i, j, delay);
                send_and_exit(ch, &cell, sizeof cell);
            }
        }
    }

    puts("Finishing...");
    collect_cells(queue, results);
    pp_exchange_free(queue);

    print_grid(results, started);
    return EXIT_SUCCESS;
}
