/*
 * A port of pprocess's examples/simple_create.py: an N x N grid of
 * calculations, each in a process made with pp_exchange_create (fork-style),
 * at most LIMIT at once. The new process calculates its cell, sends it to its
 * creator and leaves with pp_exit; the exchange hands each cell to its store
 * callback (pprocess's MyExchange.store_data), which puts it in the grid.
 *
 *   PP_DELAY=0.01 ./build/simple_create     (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

/* Runs the calculation of cell (i, j) in a new process of the exchange,
 * once it is below its limit. */
static void create_calculation(pp_exchange *ex, int32_t i, int32_t j, double delay)
{
    pp_channel *ch;
    struct cell cell;
    int pid, rc;

    pid = pp_exchange_create(ex, &ch);
    check(pid, "pp_exchange_create");
    if (pid > 0)
        return;
    /* In the created process: calculate, send, and always leave with
     * pp_exit, or this process would go on running the creator's loop. */
    cell = calculate(i, j, delay);
    rc = pp_send(ch, &cell, sizeof cell);
    if (rc < 0)
        fprintf(stderr, "pp_send: %s\n", pp_strerror(rc));
    pp_exit(ch, rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

int main(void)
{
    double started = now();
    double delay = delay_seconds();
    int results[N * N] = {0};
    pp_exchange *ex;
    int32_t i, j;

    check(pp_exchange_new(LIMIT, 0, store_cell, results, &ex), "pp_exchange_new");

    puts("Calculating...");
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++)
            create_calculation(ex, i, j, delay);

    puts("Finishing...");
    check(pp_exchange_finish(ex), "pp_exchange_finish");
    pp_exchange_free(ex);

    print_grid(results, started);
    return EXIT_SUCCESS;
}
