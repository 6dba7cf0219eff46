/*
 * A port of pprocess's examples/simple_create_map.py: an N x N grid of
 * calculations, each in a process made with pp_exchange_create (fork-style)
 * on a map, once it is below LIMIT processes. The new process sends just the
 * value i*N + j and leaves; the map keeps the values in the order the
 * processes were created, and pp_map_get reads them.
 *
 *   PP_DELAY=0.01 ./build/simple_create_map   (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

int main(int argc, char **argv)
{
    double started = now();
    double delay = delay_seconds();
    pp_exchange *map;
    pp_channel *ch;
    int32_t i, j;

    parse_options(argc, argv, 0);

    check(pp_map_new(LIMIT, 0, &map), "pp_map_new");

    puts("Calculating...");
    for (i = 0; i < N; i++) {
        for (j = 0; j < N; j++) {
            int pid = pp_exchange_create(map, &ch);

            check(pid, "pp_exchange_create");
            if (pid == 0) {
                int32_t value = calculate(i, j, delay).value;
                send_and_exit(ch, &value, sizeof value);
            }
        }
    }

    print_map(map, started);
    pp_exchange_free(map);
    return EXIT_SUCCESS;
}
