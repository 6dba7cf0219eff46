/*
 * A port of pprocess's examples/simple_persistent_queue.py: N background
 * processes (pprocess's BackgroundCallable, here pp_start_persistent), one
 * per row of the N x N grid, listening at task-0.socket ... task-9.socket in
 * the current directory. Each computes its row with a queue of at most
 * ROW_LIMIT processes and sends the row as its one result; one queue
 * connected to every address (pprocess's PersistentQueue.connect, here
 * pp_exchange_connect) collects the rows as they arrive, in this run or in a
 * later one.
 *
 *   ./build/simple_persistent_queue              start the work, then collect it
 *   ./build/simple_persistent_queue --start      start it in the background, exit
 *   ./build/simple_persistent_queue --reconnect  collect it (a later run)
 *
 * PP_DELAY=0.01 makes the 1-second calculations quick.
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

/* Processes per row: N background processes run at once, so this is small. */
#define ROW_LIMIT 2

/* One background process's result: its row of the grid. */
struct row {
    int32_t i;
    int32_t values[N];
};

/* The address of row i's background process. */
static void address_of(int i, char *address, size_t cap)
{
    snprintf(address, cap, "task-%d.socket", i);
}

/* The background computation of row i (pprocess's task(i)); the argument
 * is a struct task whose j is unused. Its standard streams are /dev/null,
 * so its progress lines go nowhere (in pprocess they failed). */
static int task(pp_channel *ch, const void *arg, size_t arg_len)
{
    struct task cell_task;
    struct cell cell;
    struct row row;
    pp_exchange *queue;
    size_t len;
    int rc;

    if (arg_len != sizeof cell_task)
        return PP_EINVAL;
    memcpy(&cell_task, arg, sizeof cell_task);
    memset(&row, 0, sizeof row);
    row.i = cell_task.i;
    if ((rc = pp_queue_new(ROW_LIMIT, 0, &queue)) < 0)
        return rc;

    puts("Calculating...");
    for (cell_task.j = 0; cell_task.j < N; cell_task.j++)
        if ((rc = pp_exchange_call(queue, calculate_cell, &cell_task, sizeof cell_task,
                                   sizeof cell)) < 0)
            goto done;

    puts("Finishing...");
    while ((rc = pp_exchange_next(queue, &cell, sizeof cell, &len)) >= 0) {
        if (len != sizeof cell || cell.j < 0 || cell.j >= N) {
            rc = PP_EPROTO;
            goto done;
        }
        row.values[cell.j] = cell.value;
    }
    if (rc == PP_EDONE)
        rc = pp_send(ch, &row, sizeof row);
done:
    pp_exchange_free(queue);
    return rc;
}

int main(int argc, char **argv)
{
    const char *option = parse_options(argc, argv, 1);
    double started = now();
    char address[32];
    int i;

    if (option == NULL || strcmp(option, "--start") == 0) {
        struct task row_task;

        row_task.j = 0;
        row_task.delay = delay_seconds();
        for (row_task.i = 0; row_task.i < N; row_task.i++) {
            address_of(row_task.i, address, sizeof address);
            check(pp_start_persistent(address, task, &row_task, sizeof row_task),
                  "pp_start_persistent");
        }
        puts("Discarded the callable.");
    }

    if (option == NULL || strcmp(option, "--reconnect") == 0) {
        int results[N * N] = {0};
        int received[N] = {0};
        pp_exchange *queue;
        struct row row;
        size_t len;
        int rc;

        puts("Opening a queue.");
        check(pp_queue_new(N, 0, &queue), "pp_queue_new");
        for (i = 0; i < N; i++) {
            address_of(i, address, sizeof address);
            connect_or_exit(queue, address);
        }

        puts("Waiting for persistent results");
        while ((rc = pp_exchange_next(queue, &row, sizeof row, &len)) >= 0) {
            if (len != sizeof row || row.i < 0 || row.i >= N || received[row.i]++)
                check(PP_EPROTO, "pp_exchange_next");
            memcpy(&results[row.i * N], row.values, sizeof row.values);
        }
        if (rc != PP_EDONE)
            check_result(queue, rc, "pp_exchange_next");
        pp_exchange_free(queue);
        for (i = 0; i < N; i++)
            if (!received[i]) {
                fprintf(stderr, "row %d never arrived\n", i);
                return EXIT_FAILURE;
            }

        print_grid(results, started);
    }
    return EXIT_SUCCESS;
}
