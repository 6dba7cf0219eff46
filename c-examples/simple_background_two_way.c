/*
 * A two-way background process: the grid of pprocess's examples, computed
 * by one background process (pp_start_persistent) that takes its work from
 * a client instead of from its start argument. The client connects to the
 * address (pp_connect), sends every cell's task on that channel, then
 * collects the answers and tells the background process to stop. The
 * background callable receives the tasks with pp_receive, as a created
 * process receives from its creator; what the client sends is kept by the
 * background process until the callable has received it, even if the
 * client goes away.
 *
 *   ./build/simple_background_two_way
 *
 * PP_DELAY=0.01 makes the 1-second calculations quick (they run one after
 * the other, in the one background process).
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

#define ADDRESS "two-way.socket"

/* The background callable: answers each task with its cell until a task
 * with a negative row says stop. */
static int serve(pp_channel *ch, const void *arg, size_t arg_len)
{
    struct task task;
    struct cell cell;
    size_t len;
    int rc;

    (void)arg;
    (void)arg_len;
    for (;;) {
        if ((rc = pp_receive(ch, &task, sizeof task, &len)) < 0)
            return rc;
        if (len != sizeof task)
            return PP_EPROTO;
        if (task.i < 0)
            return 0;
        cell = calculate(task.i, task.j, task.delay);
        if ((rc = pp_send(ch, &cell, sizeof cell)) < 0)
            return rc;
    }
}

int main(int argc, char **argv)
{
    double started = now();
    int results[N * N] = {0};
    struct task task;
    struct cell cell;
    pp_channel *ch;
    size_t len;
    int k, rc;

    parse_options(argc, argv, 0);

    check(pp_start_persistent(ADDRESS, serve, NULL, 0), "pp_start_persistent");
    puts("Started the background process.");

    check_connect(pp_connect(ADDRESS, &ch), "pp_connect", ADDRESS);
    puts("Sending work.");
    task.delay = delay_seconds();
    for (task.i = 0; task.i < N; task.i++)
        for (task.j = 0; task.j < N; task.j++)
            check(pp_send(ch, &task, sizeof task), "pp_send");

    puts("Waiting for answers");
    for (k = 0; k < N * N; k++) {
        check(pp_receive(ch, &cell, sizeof cell, &len), "pp_receive");
        check(put_cell(results, &cell, len), "pp_receive");
    }
    /* Stop, and wait until the background process has received it: its
     * stream then ends, and it removes its socket file. */
    task.i = -1;
    check(pp_send_acked(ch, &task, sizeof task), "pp_send_acked");
    rc = pp_receive(ch, &cell, sizeof cell, &len);
    if (rc != PP_ECLOSED)
        check(rc < 0 ? rc : PP_EPROTO, "pp_receive");
    pp_channel_close(ch);

    print_grid(results, started);
    return EXIT_SUCCESS;
}
