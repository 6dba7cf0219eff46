/*
 * A port of pprocess's examples/simple_background_queue.py: the whole N x N
 * grid is computed by one background process (pprocess's BackgroundCallable,
 * here pp_start_persistent) listening at task.socket in the current
 * directory. That process runs a queue of at most LIMIT processes and sends
 * the finished grid as its one result; a queue connected to the address
 * (pprocess's BackgroundQueue: pp_queue_new(1, ...) + pp_exchange_connect)
 * collects it, in this run or in a later one.
 *
 *   ./build/simple_background_queue              start the work, then collect it
 *   ./build/simple_background_queue --start      start it in the background, exit
 *   ./build/simple_background_queue --reconnect  collect it (a later run)
 *
 * PP_DELAY=0.01 makes the 1-second calculations quick.
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

#define ADDRESS "task.socket"

/* The background computation (pprocess's task()): a queue computes every
 * cell, then the grid goes to whoever connects. Its standard streams are
 * /dev/null, so its progress lines go nowhere (in pprocess they failed). A
 * negative return reaches the collector as this task's error. */
static int task(pp_channel *ch, const void *arg, size_t arg_len)
{
    int results[N * N] = {0};
    struct task cell_task;
    struct cell cell;
    pp_exchange *queue;
    size_t len;
    int rc;

    if (arg_len != sizeof cell_task.delay)
        return PP_EINVAL;
    memcpy(&cell_task.delay, arg, sizeof cell_task.delay);
    if ((rc = pp_queue_new(LIMIT, 0, &queue)) < 0)
        return rc;

    puts("Calculating...");
    for (cell_task.i = 0; cell_task.i < N; cell_task.i++)
        for (cell_task.j = 0; cell_task.j < N; cell_task.j++)
            if ((rc = pp_exchange_call(queue, calculate_cell, &cell_task, sizeof cell_task,
                                       sizeof cell)) < 0)
                goto done;

    puts("Finishing...");
    while ((rc = pp_exchange_next(queue, &cell, sizeof cell, &len)) >= 0)
        if ((rc = put_cell(results, &cell, len)) < 0)
            goto done;
    if (rc == PP_EDONE)
        rc = pp_send(ch, results, sizeof results);
done:
    pp_exchange_free(queue);
    return rc;
}

int main(int argc, char **argv)
{
    const char *option = parse_options(argc, argv, 1);
    double started = now();

    if (option == NULL || strcmp(option, "--start") == 0) {
        double delay = delay_seconds();

        check(pp_start_persistent(ADDRESS, task, &delay, sizeof delay), "pp_start_persistent");
        puts("Discarded the callable.");
    }

    if (option == NULL || strcmp(option, "--reconnect") == 0) {
        int results[N * N];
        pp_exchange *queue;
        size_t len;
        int rc, received = 0;

        puts("Opening a queue.");
        check(pp_queue_new(1, 0, &queue), "pp_queue_new");
        connect_or_exit(queue, ADDRESS);

        puts("Waiting for persistent results");
        while ((rc = pp_exchange_next(queue, results, sizeof results, &len)) >= 0) {
            if (len != sizeof results)
                check(PP_EPROTO, "pp_exchange_next");
            received++; /* should only be one result */
        }
        if (rc != PP_EDONE)
            check_result(queue, rc, "pp_exchange_next");
        pp_exchange_free(queue);
        if (received != 1) {
            fprintf(stderr, "expected one result, got %d\n", received);
            return EXIT_FAILURE;
        }

        print_grid(results, started);
    }
    return EXIT_SUCCESS;
}
