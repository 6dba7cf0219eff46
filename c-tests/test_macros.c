/*
 * Every macro in the header, used the way a C program uses it: the include
 * guard, the version macros (against Cargo.toml's version, which the
 * Makefile passes in as PP_CARGO_VERSION, and against pp_version()), and the
 * exchange flags PP_REUSE, PP_CONTINUOUS and PP_KEEP_REMOVED (distinct bits,
 * accepted, each doing what it says; any other bit is PP_EINVAL). The PP_E*
 * codes are checked in test_abi.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include "check.h"
#include "pprocess.h" /* a second time: the include guard makes it harmless */

#ifndef PPROCESS_H
#error "pprocess.h defines no include guard PPROCESS_H"
#endif

#ifndef PP_CARGO_VERSION
#error "build with -DPP_CARGO_VERSION='\"x.y.z\"' (Cargo.toml's version; the Makefile does)"
#endif

/* Usable in #if: plain integer constants. */
#if PP_VERSION_MAJOR < 0 || PP_VERSION_MINOR < 0 || PP_VERSION_PATCH < 0
#error "negative version macro"
#endif
#if (PP_REUSE | PP_CONTINUOUS | PP_KEEP_REMOVED) == 0
#error "exchange flags are zero"
#endif

#define ALL_FLAGS (PP_REUSE | PP_CONTINUOUS | PP_KEEP_REMOVED | PP_BATCH)

static void test_version_macros_match_cargo_toml(void)
{
    char macros[32];

    snprintf(macros, sizeof macros, "%d.%d.%d", PP_VERSION_MAJOR, PP_VERSION_MINOR,
             PP_VERSION_PATCH);
    CHECK(strcmp(macros, PP_CARGO_VERSION) == 0);
    CHECK(strcmp(pp_version(), PP_CARGO_VERSION) == 0);
}

static int is_one_bit(unsigned flag)
{
    return flag != 0 && (flag & (flag - 1)) == 0;
}

/* The flags are integer constants (usable as case labels), one bit each. */
static const char *flag_name(unsigned flag)
{
    switch (flag) {
    case PP_REUSE:
        return "PP_REUSE";
    case PP_CONTINUOUS:
        return "PP_CONTINUOUS";
    case PP_KEEP_REMOVED:
        return "PP_KEEP_REMOVED";
    case PP_BATCH:
        return "PP_BATCH";
    default:
        return NULL;
    }
}

static void test_flags_are_distinct_bits(void)
{
    CHECK(is_one_bit(PP_REUSE));
    CHECK(is_one_bit(PP_CONTINUOUS));
    CHECK(is_one_bit(PP_KEEP_REMOVED));
    CHECK(is_one_bit(PP_BATCH));
    CHECK((PP_BATCH & (PP_REUSE | PP_CONTINUOUS | PP_KEEP_REMOVED)) == 0);
    CHECK((PP_REUSE & PP_CONTINUOUS) == 0);
    CHECK((PP_REUSE & PP_KEEP_REMOVED) == 0);
    CHECK((PP_CONTINUOUS & PP_KEEP_REMOVED) == 0);
    CHECK(strcmp(flag_name(PP_CONTINUOUS), "PP_CONTINUOUS") == 0);
}

/* The limits by name: PP_UNLIMITED is a size_t (no cast needed), PP_CORES
 * the 0 that always meant one per processor. */
static void test_limit_macros(void)
{
    size_t unlimited = PP_UNLIMITED;

    CHECK(unlimited == SIZE_MAX);
    CHECK(PP_CORES == 0);
    CHECK(PP_UNLIMITED != PP_CORES);
}

static int store_nothing(pp_exchange *ex, pp_channel *ch, void *ctx)
{
    (void)ex;
    (void)ch;
    (void)ctx;
    return 0;
}

/* Every combination of known flags is accepted; every other bit is
 * PP_EINVAL and writes no handle. */
static void test_flags_accepted_and_unknown_bits_refused(void)
{
    unsigned flags, bit;

    for (flags = 0; flags <= ALL_FLAGS; flags++) {
        pp_exchange *queue = NULL, *exchange = NULL;

        if ((flags & ~(unsigned)ALL_FLAGS) != 0)
            continue;
        CHECK_EQ(pp_queue_new(2, flags, &queue), 0);
        CHECK_EQ(pp_exchange_new(2, flags, store_nothing, NULL, &exchange), 0);
        CHECK(queue != NULL && exchange != NULL);
        pp_exchange_free(queue);
        pp_exchange_free(exchange);
    }
    for (bit = 0; bit < 32; bit++) {
        unsigned flag = 1u << bit;
        pp_exchange *out = NULL;

        if (flag_name(flag) != NULL)
            continue;
        CHECK_EQ(pp_queue_new(2, flag, &out), PP_EINVAL);
        CHECK_EQ(pp_queue_new(2, flag | PP_REUSE, &out), PP_EINVAL);
        CHECK_EQ(pp_map_new(2, flag, &out), PP_EINVAL);
        CHECK_EQ(pp_exchange_new(2, flag, store_nothing, NULL, &out), PP_EINVAL);
        CHECK(out == NULL);
    }
}

/* Sends this process's pid. */
static int send_pid(pp_channel *ch, const void *arg, size_t arg_len)
{
    int pid = (int)getpid();

    (void)arg;
    (void)arg_len;
    return pp_send(ch, &pid, sizeof pid);
}

/* Sends `*arg` messages. */
static int send_several(pp_channel *ch, const void *arg, size_t arg_len)
{
    unsigned char count, i;
    int rc = 0;

    if (arg_len != 1)
        return 1;
    memcpy(&count, arg, 1);
    for (i = 0; i < count && rc == 0; i++)
        rc = pp_send(ch, &i, 1);
    return rc;
}

/* How many results a queue hands out before PP_EDONE; -1 on another error. */
static int count_results(pp_exchange *queue)
{
    int value, results = 0, rc;
    size_t len;

    while ((rc = pp_exchange_next(queue, &value, sizeof value, &len)) >= 0)
        results++;
    return rc == PP_EDONE ? results : -1;
}

/* PP_REUSE: with a limit of 1, every task runs in the same worker. */
static void test_reuse_runs_tasks_in_one_worker(void)
{
    pp_exchange *queue = NULL;
    int pids[3], i;
    size_t len;

    CHECK_EQ(pp_queue_new(1, PP_REUSE, &queue), 0);
    for (i = 0; i < 3; i++)
        CHECK_OK(pp_exchange_start(queue, send_pid, NULL, 0));
    for (i = 0; i < 3; i++) {
        pids[i] = -1;
        CHECK_OK(pp_exchange_next(queue, &pids[i], sizeof pids[i], &len));
    }
    CHECK(pids[0] > 0 && pids[0] == pids[1] && pids[1] == pids[2]);
    CHECK(pids[0] != (int)getpid());
    pp_exchange_free(queue);
}

/* PP_CONTINUOUS: every message a task sends is a result. */
static void test_continuous_stores_every_message(void)
{
    const unsigned char three = 3;
    pp_exchange *queue = NULL;

    CHECK_EQ(pp_queue_new(2, PP_CONTINUOUS, &queue), 0);
    CHECK_OK(pp_exchange_start(queue, send_several, &three, 1));
    CHECK_OK(pp_exchange_start(queue, send_several, &three, 1));
    CHECK_EQ(count_results(queue), 6);
    pp_exchange_free(queue);
}

/* PP_KEEP_REMOVED: a removed channel is the caller's again, still open. */
static void test_keep_removed_hands_the_channel_back(void)
{
    pp_exchange *exchange = NULL;
    pp_channel *ch = NULL;
    int pid = 0;
    size_t len;

    CHECK_EQ(pp_exchange_new(1, PP_KEEP_REMOVED, store_nothing, NULL, &exchange), 0);
    CHECK_OK(pp_start(send_pid, NULL, 0, &ch));
    if (exchange == NULL || ch == NULL)
        return;
    CHECK_OK(pp_exchange_add(exchange, ch));
    CHECK_EQ(pp_exchange_remove(exchange, ch), 0);
    CHECK_EQ(pp_exchange_active(exchange), 0);
    CHECK_EQ(pp_receive(ch, &pid, sizeof pid, &len), 0);
    CHECK_EQ(pid, pp_channel_pid(ch));
    pp_channel_close(ch);
    pp_exchange_free(exchange);
}

int main(void)
{
    RUN(test_version_macros_match_cargo_toml);
    RUN(test_flags_are_distinct_bits);
    RUN(test_limit_macros);
    RUN(test_flags_accepted_and_unknown_bits_refused);
    RUN(test_reuse_runs_tasks_in_one_worker);
    RUN(test_continuous_stores_every_message);
    RUN(test_keep_removed_hands_the_channel_back);
    return report();
}
