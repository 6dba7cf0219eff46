/*
 * A port of pprocess's examples/simple_persistent_managed.py: the whole
 * N x N grid is computed by one background process started through an
 * exchange (pprocess's PersistentExchange.manage(address, ...), here
 * pp_exchange_start_persistent) and listening at task.socket in the current
 * directory. That process runs an exchange of at most LIMIT processes whose
 * store_data puts each cell in its grid, and sends the finished grid as its
 * one result. The first exchange is freed at once; a new exchange connected
 * to the address (pprocess's exchange.connect) stores the grid, in this run
 * or in a later one.
 *
 *   ./build/simple_persistent_managed              start the work, then collect it
 *   ./build/simple_persistent_managed --start      start it in the background, exit
 *   ./build/simple_persistent_managed --reconnect  collect it (a later run)
 *
 * PP_DELAY=0.01 makes the 1-second calculations quick.
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

#define ADDRESS "task.socket"

/* What the collecting exchange fills in (its store callback's context). */
struct grid {
    int results[N * N];
    int received;
};

/* The background computation (pprocess's task()): an exchange whose
 * store_data (store_cell) puts each cell in the grid; the grid is the one
 * result. A negative return reaches the collector as this task's error. */
static int task(pp_channel *ch, const void *arg, size_t arg_len)
{
    int results[N * N] = {0};
    struct task cell_task;
    pp_exchange *exchange;
    int rc;

    if (arg_len != sizeof cell_task.delay)
        return PP_EINVAL;
    memcpy(&cell_task.delay, arg, sizeof cell_task.delay);
    if ((rc = pp_exchange_new(LIMIT, 0, store_cell, results, &exchange)) < 0)
        return rc;

    for (cell_task.i = 0; cell_task.i < N; cell_task.i++)
        for (cell_task.j = 0; cell_task.j < N; cell_task.j++)
            if ((rc = pp_exchange_call(exchange, calculate_cell, &cell_task, sizeof cell_task,
                                       sizeof(struct cell))) < 0)
                goto done;

    if ((rc = pp_exchange_finish(exchange)) == 0)
        rc = pp_send(ch, results, sizeof results);
done:
    pp_exchange_free(exchange);
    return rc;
}

/* The persistent exchange's store_data (pprocess's `self.D[:] =
 * ch.receive()`): the whole grid in one message. */
static int store_grid(pp_exchange *ex, pp_channel *ch, void *ctx)
{
    struct grid *grid = (struct grid *)ctx;
    size_t len;
    int rc = pp_receive(ch, grid->results, sizeof grid->results, &len);

    (void)ex;
    if (rc < 0)
        return rc;
    if (len != sizeof grid->results)
        return PP_EPROTO;
    grid->received++;
    return 0;
}

int main(int argc, char **argv)
{
    const char *option = parse_options(argc, argv, 1);
    double started = now();
    struct grid grid = {{0}, 0};
    pp_exchange *exchange;

    if (option == NULL || strcmp(option, "--start") == 0) {
        double delay = delay_seconds();

        check(pp_exchange_new(1, 0, store_grid, &grid, &exchange), "pp_exchange_new");
        check(pp_exchange_start_persistent(exchange, ADDRESS, task, &delay, sizeof delay),
              "pp_exchange_start_persistent");
        pp_exchange_free(exchange);
        puts("Closed original exchange.");
    }

    if (option == NULL || strcmp(option, "--reconnect") == 0) {
        puts("Opening new exchange.");
        check(pp_exchange_new(1, 0, store_grid, &grid, &exchange), "pp_exchange_new");
        connect_or_exit(exchange, ADDRESS);

        puts("Waiting for persistent results");
        check(pp_exchange_finish(exchange), "pp_exchange_finish");
        pp_exchange_free(exchange);
        if (grid.received != 1) {
            fprintf(stderr, "expected one grid, got %d\n", grid.received);
            return EXIT_FAILURE;
        }

        print_grid(grid.results, started);
    }
    return EXIT_SUCCESS;
}
