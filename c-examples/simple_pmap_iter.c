/*
 * A port of pprocess's examples/simple_pmap_iter.py, which iterates over the
 * (lazy) result of pprocess's pmap. The C analogue is what pmap does inside:
 * a map with one pp_exchange_call of a plain function (calculate_value in
 * grid.h) per input, at most LIMIT processes at once, then pp_exchange_next
 * to take each value in input order as soon as it is in.
 *
 *   PP_DELAY=0.01 ./build/simple_pmap_iter  (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

int main(int argc, char **argv)
{
    double started = now();
    struct task task;
    pp_exchange *map;
    int32_t value;
    size_t len;
    int index;

    parse_options(argc, argv, 0);

    check(pp_map_new(LIMIT, 0, &map), "pp_map_new");
    task.delay = delay_seconds();
    for (task.i = 0; task.i < N; task.i++)
        for (task.j = 0; task.j < N; task.j++)
            check(pp_exchange_call(map, calculate_value, &task, sizeof task, sizeof value),
                  "pp_exchange_call");

    /* Each result comes with its task id: its index in the sequence. */
    while ((index = pp_exchange_next(map, &value, sizeof value, &len)) >= 0) {
        if (len != sizeof value)
            check(PP_EPROTO, "pp_exchange_next");
        print_cell(index, value);
    }
    if (index != PP_EDONE)
        check_result(map, index, "pp_exchange_next");
    pp_exchange_free(map);

    print_time(started);
    return EXIT_SUCCESS;
}
