/*
 * A port of pprocess's examples/simple_continuous_queue.py: an N x N grid of
 * calculations, one process per row, on a queue made with PP_CONTINUOUS
 * (pprocess's Queue(continuous=1)): each process calculates the N cells of
 * its row and sends each as soon as it is done, and every message is a
 * result of its own. The cells come out of the queue with pp_exchange_next
 * in the order they arrive.
 *
 *   PP_DELAY=0.01 ./build/simple_continuous_queue   (default delay: 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

/* The argument of one row's process. */
struct row {
    int32_t i;
    double delay;
};

/* The channel-aware callable: calculates row i and sends each cell. */
static int calculate_row(pp_channel *ch, const void *arg, size_t arg_len)
{
    struct row row;
    struct cell cell;
    int32_t j;
    int rc;

    if (arg_len != sizeof row)
        return PP_EINVAL;
    memcpy(&row, arg, sizeof row);
    for (j = 0; j < N; j++) {
        cell = calculate(row.i, j, row.delay);
        rc = pp_send(ch, &cell, sizeof cell);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int main(int argc, char **argv)
{
    double started = now();
    int results[N * N] = {0};
    struct row row;
    pp_exchange *queue;

    parse_options(argc, argv, 0);

    check(pp_queue_new(LIMIT, PP_CONTINUOUS, &queue), "pp_queue_new");
    row.delay = delay_seconds();

    puts("Calculating...");
    for (row.i = 0; row.i < N; row.i++)
        check(pp_exchange_start(queue, calculate_row, &row, sizeof row), "pp_exchange_start");

    puts("Finishing...");
    collect_cells(queue, results);
    pp_exchange_free(queue);

    print_grid(results, started);
    return EXIT_SUCCESS;
}
