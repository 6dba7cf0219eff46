/*
 * A port of pprocess's examples/simple_managed_map.py: an N x N grid of
 * calculations by a plain function (calculate_value in grid.h), each call
 * managed by a map (pprocess's results.manage(MakeParallel(calculate))) with
 * pp_exchange_call, at most LIMIT processes at once. The map keeps the
 * values in the order the calls were made; pp_map_get reads them.
 *
 *   PP_DELAY=0.01 ./build/simple_managed_map   (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

int main(int argc, char **argv)
{
    double started = now();
    struct task task;
    pp_exchange *map;

    parse_options(argc, argv, 0);

    check(pp_map_new(LIMIT, 0, &map), "pp_map_new");
    task.delay = delay_seconds();

    puts("Calculating...");
    for (task.i = 0; task.i < N; task.i++)
        for (task.j = 0; task.j < N; task.j++)
            check(pp_exchange_call(map, calculate_value, &task, sizeof task, sizeof(int32_t)),
                  "pp_exchange_call");

    print_map(map, started);
    pp_exchange_free(map);
    return EXIT_SUCCESS;
}
