/*
 * A port of pprocess's examples/simple_create.py: an N x N grid of
 * calculations, each in a process made with pp_create (fork-style), at most
 * LIMIT at once. The new process calculates its cell, sends it to its
 * creator and leaves with pp_exit; the creator gathers the cells with poll(2)
 * over the channels' descriptors (see poll_exchange.h).
 *
 *   PP_DELAY=0.01 ./build/simple_create     (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"
#include "poll_exchange.h"

/* Runs the calculation of cell (i, j) in a new process. */
static void create_calculation(struct exchange *ex, int32_t i, int32_t j, double delay)
{
    pp_channel *ch;
    struct cell cell;
    int pid, rc;

    exchange_wait(ex);
    pid = pp_create(&ch);
    check(pid, "pp_create");
    if (pid > 0) {
        exchange_add(ex, ch);
        return;
    }
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
    struct exchange ex = {{NULL}, 0, results};
    int32_t i, j;

    puts("Calculating...");
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++)
            create_calculation(&ex, i, j, delay);

    puts("Finishing...");
    exchange_finish(&ex);
    check(pp_waitall(), "pp_waitall");

    print_grid(results, started);
    return EXIT_SUCCESS;
}
