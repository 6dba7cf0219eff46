/*
 * A port of pprocess's examples/simple_create.py: an N x N grid of
 * calculations, each in a process made with pp_exchange_create (fork-style)
 * once the exchange is below LIMIT processes. The new process calculates its
 * cell, sends it to its creator and leaves; the exchange hands each cell to
 * its store callback (pprocess's MyExchange.store_data, store_cell in
 * grid.h), which puts it in the grid.
 *
 *   PP_DELAY=0.01 ./build/simple_create     (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

int main(int argc, char **argv)
{
    double started = now();
    double delay = delay_seconds();
    int results[N * N] = {0};
    pp_exchange *ex;
    pp_channel *ch;
    int32_t i, j;

    parse_options(argc, argv, 0);

    check(pp_exchange_new(LIMIT, 0, store_cell, results, &ex), "pp_exchange_new");

    puts("Calculating...");
    for (i = 0; i < N; i++) {
        for (j = 0; j < N; j++) {
            int pid = pp_exchange_create(ex, &ch);

            check(pid, "pp_exchange_create");
            if (pid == 0) {
                struct cell cell = calculate(i, j, delay);
                send_and_exit(ch, &cell, sizeof cell);
            }
        }
    }

    puts("Finishing...");
    check(pp_exchange_finish(ex), "pp_exchange_finish");
    pp_exchange_free(ex);

    print_grid(results, started);
    return EXIT_SUCCESS;
}
