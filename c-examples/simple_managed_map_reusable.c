/*
 * A port of pprocess's examples/simple_managed_map_reusable.py: as
 * simple_managed_map, but the map is made with PP_REUSE (pprocess's
 * Map(reuse=1) with MakeReusable): LIMIT worker processes are created once
 * and each runs the plain function (calculate_value in grid.h) for one call
 * after another, instead of a process per call.
 *
 *   PP_DELAY=0.01 ./build/simple_managed_map_reusable   (default delay: 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

int main(int argc, char **argv)
{
    double started = now();
    struct task task;
    pp_exchange *map;

    parse_options(argc, argv, 0);

    check(pp_map_new(LIMIT, PP_REUSE, &map), "pp_map_new");
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
