/*
 * A minimal version of pprocess's Exchange for the simple_* examples, written
 * with poll(2) over pp_channel_fd(): it watches up to LIMIT channels, each
 * delivering one struct cell, stores each cell in the grid, and closes the
 * channel (its process is collected by a later pp_create or by pp_waitall).
 *
 * Polling the descriptor is enough here because each channel carries a single
 * message, received at once: the library never holds a message read ahead
 * that poll(2) could not see.
 *
 * The including file defines _POSIX_C_SOURCE before any #include.
 */
#ifndef POLL_EXCHANGE_H
#define POLL_EXCHANGE_H

#include <poll.h>
#include <stddef.h>

#include "grid.h"
#include "pprocess.h"

struct exchange {
    pp_channel *channels[LIMIT];
    size_t active;   /* channels[0 .. active) are monitored */
    int *results;    /* the N x N grid */
};

/* Monitors ch (the caller made room with exchange_wait). */
static inline void exchange_add(struct exchange *ex, pp_channel *ch)
{
    ex->channels[ex->active++] = ch;
}

/* Exits with the error of a receive, including a worker's own report. */
static inline void receive_failed(const pp_channel *ch, int rc)
{
    int code;
    const char *message;

    if (rc == PP_EREMOTE && pp_channel_remote_error(ch, &code, &message) == 1)
        fprintf(stderr, "worker %d failed with code %d: %s\n",
                pp_channel_pid(ch), code, message);
    else
        fprintf(stderr, "pp_receive from worker %d: %s\n", pp_channel_pid(ch), pp_strerror(rc));
    exit(EXIT_FAILURE);
}

/* pprocess's store_data: takes the cell a ready channel delivers. */
static inline void store_data(struct exchange *ex, pp_channel *ch)
{
    struct cell cell;
    size_t len;
    int rc = pp_receive(ch, &cell, sizeof cell, &len);

    if (rc < 0)
        receive_failed(ch, rc);
    if (len != sizeof cell || cell.i < 0 || cell.i >= N || cell.j < 0 || cell.j >= N) {
        fprintf(stderr, "worker %d sent a malformed cell\n", pp_channel_pid(ch));
        exit(EXIT_FAILURE);
    }
    ex->results[cell.i * N + cell.j] = cell.value;
}

/* Waits until some channels are ready; stores their cells and closes them. */
static inline void exchange_store(struct exchange *ex)
{
    struct pollfd fds[LIMIT];
    size_t k;
    int ready;

    for (k = 0; k < ex->active; k++) {
        fds[k].fd = pp_channel_fd(ex->channels[k]);
        check(fds[k].fd, "pp_channel_fd");
        fds[k].events = POLLIN;
    }
    while ((ready = poll(fds, ex->active, -1)) < 0 && errno == EINTR)
        continue;
    if (ready < 0) {
        perror("poll");
        exit(EXIT_FAILURE);
    }
    /* Backwards, so that moving the last channel into a freed slot only
     * moves one that was already looked at. */
    for (k = ex->active; k-- > 0;) {
        if (fds[k].revents == 0)
            continue;
        store_data(ex, ex->channels[k]);
        pp_channel_close(ex->channels[k]);
        ex->channels[k] = ex->channels[--ex->active];
    }
}

/* pprocess's wait: stores results until below the limit. */
static inline void exchange_wait(struct exchange *ex)
{
    while (ex->active >= LIMIT)
        exchange_store(ex);
}

/* pprocess's finish: stores results until no channel is left. */
static inline void exchange_finish(struct exchange *ex)
{
    while (ex->active > 0)
        exchange_store(ex);
}

#endif /* POLL_EXCHANGE_H */
