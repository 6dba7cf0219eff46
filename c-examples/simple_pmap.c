/*
 * A port of pprocess's examples/simple_pmap.py: an N x N grid of
 * calculations by a plain function (calculate_value in grid.h) applied to a
 * sequence of N * N fixed-size records with pp_pmap (pprocess's pmap), at
 * most LIMIT processes at once. The outputs are in the order of the inputs.
 *
 *   PP_DELAY=0.01 ./build/simple_pmap       (the default delay is 1 second)
 */
#define _POSIX_C_SOURCE 200809L

#include "grid.h"

int main(int argc, char **argv)
{
    double started = now();
    double delay = delay_seconds();
    struct task sequence[N * N];
    int32_t results[N * N];
    int32_t i, j;

    parse_options(argc, argv, 0);

    for (i = 0; i < N; i++) {
        for (j = 0; j < N; j++) {
            sequence[i * N + j].i = i;
            sequence[i * N + j].j = j;
            sequence[i * N + j].delay = delay;
        }
    }

    check(pp_pmap(calculate_value, sequence, sizeof sequence[0], results, sizeof results[0],
                  N * N, LIMIT, 0),
          "pp_pmap");

    print_grid(results, started);
    return EXIT_SUCCESS;
}
