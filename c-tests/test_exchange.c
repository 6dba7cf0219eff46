/*
 * Exchanges from C: the limit seen from the children, the waiting list, Map
 * order, Queue exactly once, reused workers, continuous tasks, killed
 * workers, failing tasks, results larger than the buffer, pp_map_get, an
 * exchange with a store callback and its methods, PP_KEEP_REMOVED,
 * pp_exchange_create, pp_pmap, leaks over 1,000 tasks, and bad arguments.
 *
 * A test that hangs is ended by check.h's alarm: "no hang" needs no timing.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

enum {
    TASK_FAILURE = 42,      /* what a failing task returns */
    STORE_FAILURE = -5000,  /* what a failing store callback returns */
    MESSAGES = 50,          /* messages of each continuous task */
    EXIT_TASKS = 20,        /* tasks of the reused worker that calls pp_exit */
    MANY_TASKS = 1000
};

static void sleep_ms(int ms)
{
    struct timespec left;

    left.tv_sec = ms / 1000;
    left.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&left, &left) < 0 && errno == EINTR)
        continue;
}

/* A duration that puts `count` tasks out of order: 0 .. count-1 steps. */
static int shuffled_ms(int index, int count, int step)
{
    return (index * 7) % count * step; /* 7 is prime to every count used */
}

/* ---- Jobs: the plain function (pp_function) most tests run ---- */

/* What a job does after its sleep. */
enum action {
    ANSWER, /* answers with its index and pid */
    COUNT,  /* also counts its live siblings */
    FAIL,   /* returns TASK_FAILURE */
    DIE     /* is killed with SIGKILL */
};

struct job {
    int32_t index, sleep_ms, action;
};

struct answer {
    int32_t index, pid, siblings;
};

static int run_job(const void *input, size_t input_len, void *output, size_t output_cap,
                   size_t *output_len)
{
    struct job job;
    struct answer answer = {0, 0, 0};

    if (input_len != sizeof job || output_cap < sizeof answer)
        return PP_EINVAL;
    memcpy(&job, input, sizeof job);
    sleep_ms(job.sleep_ms);
    if (job.action == FAIL)
        return TASK_FAILURE;
    if (job.action == DIE)
        raise(SIGKILL);
    answer.index = job.index;
    answer.pid = (int32_t)getpid();
    if (job.action == COUNT)
        answer.siblings = children_of(getppid()).live;
    memcpy(output, &answer, sizeof answer);
    *output_len = sizeof answer;
    return 0;
}

/* Calls run_job as a task of ex; returns pp_exchange_call's result. */
static int call_job(pp_exchange *ex, int index, int sleep, enum action action)
{
    struct job job;

    job.index = index;
    job.sleep_ms = sleep;
    job.action = action;
    return pp_exchange_call(ex, run_job, &job, sizeof job, sizeof(struct answer));
}

/* Takes the next answer of a queue or map: its task id, or the error. */
static int next_answer(pp_exchange *ex, struct answer *answer)
{
    size_t len = 0;
    int rc = pp_exchange_next(ex, answer, sizeof *answer, &len);

    if (rc >= 0)
        CHECK_EQ(len, sizeof *answer);
    return rc;
}

/* ---- Other task bodies ---- */

/* A pipe that gated tasks wait on: each passes when a byte is written. */
static int gate[2] = {-1, -1};

static void gate_open(int passes)
{
    while (passes-- > 0)
        CHECK_EQ(write(gate[1], "", 1), 1);
}

static void gate_remove(void)
{
    close(gate[0]);
    close(gate[1]);
}

/* A pp_callable: sends its argument back. */
static int echo_arg(pp_channel *ch, const void *arg, size_t arg_len)
{
    return pp_send(ch, arg, arg_len);
}

/* A pp_callable: waits at the gate, then sends its argument back. */
static int gated_echo_arg(pp_channel *ch, const void *arg, size_t arg_len)
{
    char byte;

    return read(gate[0], &byte, 1) == 1 ? echo_arg(ch, arg, arg_len) : 1;
}

/* A pp_callable: sends its argument back, then stays until the creator
 * closes the channel. */
static int echo_arg_and_stay(pp_channel *ch, const void *arg, size_t arg_len)
{
    int rc = echo_arg(ch, arg, arg_len);

    return rc < 0 ? rc : serve_until_closed(ch, NULL, 0);
}

/* A pp_callable: sends back every message until the channel is closed. */
static int echo_until_closed(pp_channel *ch, const void *arg, size_t arg_len)
{
    char buf[64];
    size_t len;
    int rc;

    (void)arg;
    (void)arg_len;
    while ((rc = pp_receive(ch, buf, sizeof buf, &len)) == 0)
        if ((rc = pp_send(ch, buf, len)) < 0)
            return rc;
    return rc == PP_ECLOSED ? 0 : rc;
}

/* A pp_callable for continuous tasks: sends MESSAGES int32_t values,
 * task * 1000 + m for m = 0, 1, ... */
static int send_many(pp_channel *ch, const void *arg, size_t arg_len)
{
    int32_t task, m, value;
    int rc;

    if (arg_len != sizeof task)
        return PP_EINVAL;
    memcpy(&task, arg, sizeof task);
    for (m = 0; m < MESSAGES; m++) {
        value = task * 1000 + m;
        if ((rc = pp_send(ch, &value, sizeof value)) < 0)
            return rc;
    }
    return 0;
}

/* A pp_callable that fails with the code it is given. */
static int fail_with(pp_channel *ch, const void *arg, size_t arg_len)
{
    int32_t code = 1;

    (void)ch;
    if (arg_len == sizeof code)
        memcpy(&code, arg, sizeof code);
    return code;
}

/* A pp_function: `size` (a size_t) in, that many bytes out, byte k = k % 251. */
static int fill_bytes(const void *input, size_t input_len, void *output, size_t output_cap,
                      size_t *output_len)
{
    unsigned char *bytes = (unsigned char *)output;
    size_t size, k;

    if (input_len != sizeof size)
        return PP_EINVAL;
    memcpy(&size, input, sizeof size);
    if (size > output_cap)
        return PP_ETOOBIG;
    for (k = 0; k < size; k++)
        bytes[k] = (unsigned char)(k % 251);
    *output_len = size;
    return 0;
}

/* True if data holds what fill_bytes makes for `size`. */
static int filled(const void *data, size_t size)
{
    const unsigned char *bytes = (const unsigned char *)data;
    size_t k;

    for (k = 0; k < size; k++)
        if (bytes[k] != k % 251)
            return 0;
    return 1;
}

/* The input pp_pmap's square fails for. */
#define FAILING_INPUT (-1)

/* A pp_function: the square of an int32_t (TASK_FAILURE for FAILING_INPUT). */
static int square(const void *input, size_t input_len, void *output, size_t output_cap,
                  size_t *output_len)
{
    int32_t x;

    if (input_len != sizeof x || output_cap < sizeof x)
        return PP_EINVAL;
    memcpy(&x, input, sizeof x);
    if (x == FAILING_INPUT)
        return TASK_FAILURE;
    x *= x;
    memcpy(output, &x, sizeof x);
    *output_len = sizeof x;
    return 0;
}

/* ---- A store callback (pprocess's store_data) and what it keeps ---- */

struct store_log {
    int count;      /* messages stored */
    int32_t sum;    /* of their values */
    int fail;       /* return STORE_FAILURE after receiving */
};

static int store_value(pp_exchange *ex, pp_channel *ch, void *ctx)
{
    struct store_log *log = (struct store_log *)ctx;
    int32_t value;
    size_t len;
    int rc = pp_receive(ch, &value, sizeof value, &len);

    (void)ex;
    if (rc < 0)
        return rc;
    log->count++;
    log->sum += value;
    return log->fail ? STORE_FAILURE : 0;
}

/* pp_start(callable) with an int32_t argument: the channel, or NULL. */
static pp_channel *start_with_value(pp_callable callable, int32_t value)
{
    pp_channel *ch = NULL;

    CHECK_OK(pp_start(callable, &value, sizeof value, &ch));
    return ch;
}

/* ---- The limit and the waiting list ---- */

enum { LIMIT = 3, LIMIT_JOBS = 12 };

/* Runs in a process of its own, so that the map's workers are its only
 * children: sends back the most live siblings any job saw (-1: a failure). */
static int report_most_siblings(pp_channel *ch, const void *arg, size_t arg_len)
{
    struct answer answer;
    pp_exchange *map;
    unsigned flags;
    int32_t most = 0;
    size_t len;
    int k, rc;

    if (arg_len != sizeof flags)
        return PP_EINVAL;
    memcpy(&flags, arg, sizeof flags);
    if (pp_map_new(LIMIT, flags, &map) < 0)
        return 1;
    for (k = 0; k < LIMIT_JOBS; k++)
        if (call_job(map, k, 20, COUNT) < 0)
            most = -1;
    while ((rc = pp_exchange_next(map, &answer, sizeof answer, &len)) >= 0)
        if (most >= 0 && answer.siblings > most)
            most = answer.siblings;
    if (rc != PP_EDONE)
        most = -1;
    pp_exchange_free(map);
    return pp_send(ch, &most, sizeof most);
}

static void check_limit_seen_from_children(unsigned flags)
{
    pp_channel *ch = NULL;
    int32_t most = -1;
    size_t len;

    CHECK_OK(pp_start(report_most_siblings, &flags, sizeof flags, &ch));
    if (ch == NULL)
        return;
    CHECK_OK(pp_receive(ch, &most, sizeof most, &len));
    CHECK(most <= LIMIT);
    CHECK(most >= 2); /* the jobs did run side by side */
    CHECK_EQ(wait_exit_code(ch), 0);
    pp_channel_close(ch);
}

static void test_limit_seen_from_children(void)
{
    check_limit_seen_from_children(0);
    check_limit_seen_from_children(PP_REUSE);
}

static void test_waiting_list_drains(void)
{
    enum { TASKS = 10 };
    int seen[TASKS] = {0};
    pp_exchange *queue;
    int32_t k, value;
    size_t len;
    int rc;

    CHECK_OK(pipe(gate));
    CHECK_OK(pp_queue_new(2, 0, &queue));
    /* Starting beyond the limit returns at once: the tasks wait in the
     * list while the two running ones are held at the gate. */
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(pp_exchange_start(queue, gated_echo_arg, &k, sizeof k), k);
    CHECK_EQ(pp_exchange_active(queue), 2);
    CHECK_EQ(pp_exchange_busy(queue), 1);
    CHECK_EQ(pp_exchange_unfinished(queue), 1);
    CHECK_EQ(pp_exchange_store(queue, 0), PP_ETIMEDOUT);

    gate_open(TASKS);
    while ((rc = pp_exchange_next(queue, &value, sizeof value, &len)) >= 0) {
        CHECK_EQ(value, rc); /* each task sent its own id */
        if (value >= 0 && value < TASKS)
            seen[value]++;
    }
    CHECK_EQ(rc, PP_EDONE);
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(seen[k], 1);
    CHECK_EQ(pp_exchange_unfinished(queue), 0);
    CHECK_EQ(pp_exchange_active(queue), 0);
    pp_exchange_free(queue);
    gate_remove();
}

/* ---- Map and Queue order ---- */

static void test_map_keeps_start_order(void)
{
    enum { TASKS = 12 };
    struct answer answer;
    pp_exchange *map;
    int k;

    CHECK_OK(pp_map_new(4, 0, &map));
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(call_job(map, k, shuffled_ms(k, TASKS, 10), ANSWER), k);
    for (k = 0; k < TASKS; k++) {
        CHECK_EQ(next_answer(map, &answer), k);
        CHECK_EQ(answer.index, k);
    }
    CHECK_EQ(next_answer(map, &answer), PP_EDONE);
    pp_exchange_free(map);
}

static void test_queue_yields_each_once(void)
{
    enum { TASKS = 40 };
    int seen[TASKS] = {0};
    struct answer answer;
    pp_exchange *queue;
    int k, rc;

    CHECK_OK(pp_queue_new(4, 0, &queue));
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(call_job(queue, k, shuffled_ms(k, TASKS, 2), ANSWER), k);
    while ((rc = next_answer(queue, &answer)) >= 0) {
        CHECK_EQ(answer.index, rc);
        if (answer.index >= 0 && answer.index < TASKS)
            seen[answer.index]++;
    }
    CHECK_EQ(rc, PP_EDONE);
    CHECK_EQ(next_answer(queue, &answer), PP_EDONE); /* and it stays done */
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(seen[k], 1);
    pp_exchange_free(queue);
}

/* ---- Reuse and continuous tasks ---- */

/* Adds pid to pids[0 .. *count) unless it is there. */
static void note_pid(int32_t pid, int32_t *pids, int *count)
{
    int k;

    for (k = 0; k < *count; k++)
        if (pids[k] == pid)
            return;
    pids[(*count)++] = pid;
}

/* Many more tasks than workers: every answer comes from one of at most
 * `limit` processes, and in order. */
static void check_reuse(size_t limit)
{
    enum { TASKS = 30 };
    int32_t pids[TASKS];
    struct answer answer;
    pp_exchange *map;
    int k, workers = 0;

    CHECK_OK(pp_map_new(limit, PP_REUSE, &map));
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(call_job(map, k, 2, ANSWER), k);
    for (k = 0; k < TASKS; k++) {
        CHECK_EQ(next_answer(map, &answer), k);
        CHECK_EQ(answer.index, k);
        CHECK(answer.pid != getpid());
        note_pid(answer.pid, pids, &workers);
    }
    CHECK(workers >= 1);
    CHECK(workers <= (int)limit);
    CHECK_EQ(pp_exchange_finish(map), 0);
    CHECK_EQ(pp_exchange_active(map), 0);
    pp_exchange_free(map);
}

static void test_reuse(void)
{
    check_reuse(3);
    check_reuse(1);
}

/* A pp_callable: sends its one-byte argument back plus 100. */
static int add_hundred(pp_channel *ch, const void *arg, size_t arg_len)
{
    unsigned char byte = (unsigned char)(*(const unsigned char *)arg + 100);

    (void)arg_len;
    return pp_send(ch, &byte, 1);
}

/* Reuse is keyed by the callable itself: each task runs the callable it was
 * started with, with its own argument, and tasks of two callables at a limit
 * of one all run (the idle worker of one callable makes room for the other;
 * it used to hold the limit forever). */
static void test_reused_callables_keep_their_own_tasks(void)
{
    unsigned char byte, seen[2][3] = {{0}};
    pp_exchange *queue;
    size_t len;
    int k;

    CHECK_OK(pp_queue_new(1, PP_REUSE, &queue));
    for (k = 0; k < 3; k++) {
        byte = (unsigned char)k;
        CHECK_OK(pp_exchange_start(queue, echo_arg, &byte, 1));
        CHECK_OK(pp_exchange_start(queue, add_hundred, &byte, 1));
    }
    while (pp_exchange_next(queue, &byte, 1, &len) >= 0) {
        CHECK_EQ(len, 1);
        if (byte < 3)
            seen[0][byte]++;
        else if (byte >= 100 && byte < 103)
            seen[1][byte - 100]++;
        else
            CHECK(0);
    }
    for (k = 0; k < 3; k++) {
        CHECK_EQ(seen[0][k], 1);
        CHECK_EQ(seen[1][k], 1);
    }
    CHECK_EQ(pp_exchange_finish(queue), 0);
    pp_exchange_free(queue);
}

/* A pp_callable that never ends by itself: says it is up, then follows its
 * channel until the creator goes (concurrency-sig's bottles followers). */
static int follow(pp_channel *ch, const void *arg, size_t arg_len)
{
    unsigned char byte;
    size_t len;
    int rc = pp_send(ch, arg, arg_len);

    while (rc == 0)
        rc = pp_receive(ch, &byte, 1, &len);
    return 0;
}

/* PP_UNLIMITED starts every task at once: 9 never-ending followers all come
 * up (with one per core, those beyond the core count waited forever). */
static void test_unlimited_starts_every_never_ending_task(void)
{
    enum { FOLLOWERS = 9 };
    unsigned char byte, up[FOLLOWERS] = {0};
    pp_exchange *queue;
    size_t len;
    int k;

    CHECK_OK(pp_queue_new(PP_UNLIMITED, PP_CONTINUOUS, &queue));
    for (k = 0; k < FOLLOWERS; k++) {
        byte = (unsigned char)k;
        CHECK_EQ(pp_exchange_start(queue, follow, &byte, 1), k);
    }
    CHECK_EQ(pp_exchange_active(queue), FOLLOWERS);
    for (k = 0; k < FOLLOWERS; k++) {
        CHECK_OK(pp_exchange_next(queue, &byte, 1, &len));
        if (byte < FOLLOWERS)
            up[byte]++;
    }
    for (k = 0; k < FOLLOWERS; k++)
        CHECK_EQ(up[k], 1);
    pp_exchange_free(queue); /* kills and collects the followers */
}

static void check_continuous(unsigned flags)
{
    enum { TASKS = 5 };
    int received[TASKS] = {0};
    pp_exchange *queue;
    int32_t k, value;
    size_t len;
    int task;

    CHECK_OK(pp_queue_new(2, PP_CONTINUOUS | flags, &queue));
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(pp_exchange_start(queue, send_many, &k, sizeof k), k);
    /* Every message is a result, tagged with its task; each task's
     * messages come in the order it sent them. */
    while ((task = pp_exchange_next(queue, &value, sizeof value, &len)) >= 0) {
        if (task >= TASKS) {
            CHECK(task < TASKS);
            break;
        }
        CHECK_EQ(value, task * 1000 + received[task]);
        received[task]++;
    }
    CHECK_EQ(task, PP_EDONE);
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(received[k], MESSAGES);
    pp_exchange_free(queue);
}

/* Sends its task number; the last task then ends its worker with pp_exit. */
static int answer_then_exit_last(pp_channel *ch, const void *arg, size_t arg_len)
{
    int32_t task;
    int rc;

    if (arg_len != sizeof task)
        return PP_EINVAL;
    memcpy(&task, arg, sizeof task);
    if ((rc = pp_send(ch, &task, sizeof task)) < 0)
        return rc;
    if (task == EXIT_TASKS - 1)
        pp_exit(ch, 0);
    return 0;
}

/* A reused worker that ends with pp_exit still delivers every answer it
 * held back (a chunk's answers go out in one write), its last one included.
 * PP_BATCH is accepted and changes nothing. */
static void test_pp_exit_in_a_batching_worker_loses_no_answer(void)
{
    int answered[EXIT_TASKS] = {0};
    pp_exchange *queue;
    int32_t k, value;
    size_t len;
    int task;

    CHECK_OK(pp_queue_new(1, PP_REUSE | PP_BATCH, &queue));
    for (k = 0; k < EXIT_TASKS; k++)
        CHECK_EQ(pp_exchange_start(queue, answer_then_exit_last, &k, sizeof k), k);
    while ((task = pp_exchange_next(queue, &value, sizeof value, &len)) != PP_EDONE) {
        CHECK(task >= 0 && task < EXIT_TASKS);
        if (task < 0 || task >= EXIT_TASKS)
            break;
        CHECK_EQ(value, task);
        answered[task]++;
    }
    for (k = 0; k < EXIT_TASKS; k++)
        CHECK_EQ(answered[k], 1);
    pp_exchange_free(queue);
}

static void test_continuous_tasks_send_many_results(void)
{
    check_continuous(0);
    check_continuous(PP_REUSE);
    check_continuous(PP_REUSE | PP_BATCH);
}

/* ---- Failing tasks ---- */

/* Job 4 of 9 is killed while the others run: it alone fails, with
 * PP_EPEER, and every other answer comes, in order. */
static void check_killed_worker(unsigned flags)
{
    enum { TASKS = 9, KILLED = 4 };
    struct answer answer;
    pp_exchange *map;
    int k, pid = 0, status = 0;

    CHECK_OK(pp_map_new(3, flags, &map));
    CHECK_EQ(pp_exchange_task_status(map, &pid, &status), 0); /* no failure yet */
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(call_job(map, k, k == KILLED ? 20 : 10, k == KILLED ? DIE : ANSWER), k);
    for (k = 0; k < TASKS; k++) {
        if (k == KILLED) {
            CHECK_EQ(next_answer(map, &answer), PP_EPEER);
            CHECK_EQ(pp_exchange_task_error(map, NULL, NULL), 0); /* no code of its own */
            CHECK_EQ(pp_exchange_task_status(map, &pid, &status), 1); /* but its end */
            CHECK(pid > 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
            continue;
        }
        CHECK_EQ(next_answer(map, &answer), k);
        CHECK_EQ(answer.index, k);
    }
    CHECK_EQ(next_answer(map, &answer), PP_EDONE);
    pp_exchange_free(map);
}

static void test_killed_worker(void)
{
    check_killed_worker(0);
    check_killed_worker(PP_REUSE);
}

/* Reused workers get their tasks in chunks (one batch frame each): many
 * tasks, some slow, and one that kills its worker in the middle of a chunk.
 * It alone fails, with PP_EPEER; the tasks queued behind it in its chunk run
 * on the other workers, and every other answer comes once, in order. */
static void test_reused_chunks_lose_nothing_when_a_worker_dies(void)
{
    enum { TASKS = 400, KILLED = 150 };
    struct answer answer;
    pp_exchange *map;
    int k;

    CHECK_OK(pp_map_new(2, PP_REUSE, &map));
    for (k = 0; k < TASKS; k++) {
        int sleep = k % 50 == 0 ? 2 : 0;
        CHECK_EQ(call_job(map, k, k == KILLED ? 5 : sleep, k == KILLED ? DIE : ANSWER), k);
    }
    for (k = 0; k < TASKS; k++) {
        if (k == KILLED) {
            CHECK_EQ(next_answer(map, &answer), PP_EPEER);
            continue;
        }
        CHECK_EQ(next_answer(map, &answer), k);
        CHECK_EQ(answer.index, k);
    }
    CHECK_EQ(next_answer(map, &answer), PP_EDONE);
    CHECK_EQ(pp_exchange_finish(map), 0);
    CHECK_EQ(pp_exchange_active(map), 0);
    pp_exchange_free(map);
}

/* Workers killed while they hold the answers of the quick tasks before the
 * one they die in (answers go out a chunk at a time) lose none of them:
 * each is mirrored in memory shared with the creator, which reads it from
 * there. Exactly the killed tasks fail; every other answer comes once, in
 * order. */
static void test_killed_workers_lose_no_held_answer(void)
{
    enum { TASKS = 600 };
    struct answer answer;
    pp_exchange *map;
    unsigned limit;
    int k;

    for (limit = 1; limit <= 3; limit++) {
        CHECK_OK(pp_map_new(limit, PP_REUSE, &map));
        for (k = 0; k < TASKS; k++)
            CHECK_EQ(call_job(map, k, 0, k % 23 == 22 ? DIE : ANSWER), k);
        for (k = 0; k < TASKS; k++) {
            if (k % 23 == 22) {
                CHECK_EQ(next_answer(map, &answer), PP_EPEER);
                continue;
            }
            CHECK_EQ(next_answer(map, &answer), k);
            CHECK_EQ(answer.index, k);
        }
        CHECK_EQ(next_answer(map, &answer), PP_EDONE);
        pp_exchange_free(map);
    }
}

static void check_function_error(unsigned flags)
{
    enum { TASKS = 4, FAILING = 2 };
    struct answer answer;
    const char *message = NULL;
    pp_exchange *map;
    int k, code = 0;

    CHECK_OK(pp_map_new(2, flags, &map));
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(call_job(map, k, 0, k == FAILING ? FAIL : ANSWER), k);
    for (k = 0; k < TASKS; k++) {
        if (k == FAILING) {
            CHECK_EQ(next_answer(map, &answer), PP_EREMOTE);
            CHECK_EQ(pp_exchange_task_error(map, &code, &message), 1);
            CHECK_EQ(code, TASK_FAILURE);
            CHECK(message != NULL && message[0] != '\0');
            continue;
        }
        CHECK_EQ(next_answer(map, &answer), k);
    }
    CHECK_EQ(next_answer(map, &answer), PP_EDONE);
    pp_exchange_free(map);
}

static void test_function_error(void)
{
    check_function_error(0);
    check_function_error(PP_REUSE);
}

static void test_callable_error(void)
{
    int32_t code = 7;
    int got = 0;
    pp_exchange *queue;
    size_t len;

    CHECK_OK(pp_queue_new(1, 0, &queue));
    CHECK_EQ(pp_exchange_start(queue, fail_with, &code, sizeof code), 0);
    CHECK_EQ(pp_exchange_next(queue, NULL, 0, &len), PP_EREMOTE);
    CHECK_EQ(pp_exchange_task_error(queue, &got, NULL), 1);
    CHECK_EQ(got, code);
    pp_exchange_free(queue);
}

/* A failed task's id comes with its error, whole (not an int). */
static void test_failed_task_id_is_known(void)
{
    int32_t code = 7;
    int32_t value = 5;
    uint64_t task = 99, next = 0;
    size_t len;
    int32_t got;
    int failed, answered;
    pp_exchange *queue;

    CHECK_OK(pp_queue_new(1, 0, &queue));
    CHECK_EQ(pp_exchange_last_task(queue, &task), PP_EDONE);
    CHECK_EQ(task, 99); /* written only on success */
    CHECK_OK(pp_exchange_next_id(queue, &next));
    CHECK_EQ(next, 0);
    CHECK_EQ(pp_exchange_start(queue, echo_arg, &value, sizeof value), 0);
    CHECK_EQ(pp_exchange_start(queue, fail_with, &code, sizeof code), 1);
    CHECK_OK(pp_exchange_next_id(queue, &next));
    CHECK_EQ(next, 2);
    failed = answered = 0;
    for (int k = 0; k < 2; k++) {
        int rc = pp_exchange_next(queue, &got, sizeof got, &len);
        CHECK_OK(pp_exchange_last_task(queue, &task));
        if (rc == PP_EREMOTE) {
            CHECK_EQ(task, 1);
            failed++;
        } else {
            CHECK_EQ(rc, 0);
            CHECK_EQ(task, 0);
            CHECK_EQ(got, value);
            answered++;
        }
    }
    CHECK_EQ(failed, 1);
    CHECK_EQ(answered, 1);
    CHECK_EQ(pp_exchange_last_task(NULL, &task), PP_EINVAL);
    CHECK_EQ(pp_exchange_last_task(queue, NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_next_id(queue, NULL), PP_EINVAL);
    pp_exchange_free(queue);
}

/* An argument a reused worker could never be sent: PP_ETOOBIG from the
 * call, with nothing started. */
static void test_oversized_reused_argument_starts_nothing(void)
{
    size_t size = ((size_t)64 << 20) + 1;
    unsigned char *big = (unsigned char *)calloc(size, 1);
    int32_t outputs[1];
    int status = 0;
    uint64_t next = 9;
    pp_exchange *queue;

    CHECK(big != NULL);
    CHECK_OK(pp_queue_new(2, PP_REUSE, &queue));
    CHECK_EQ(pp_exchange_start(queue, echo_arg, big, size), PP_ETOOBIG);
    CHECK_EQ(pp_exchange_call(queue, square, big, size, 4), PP_ETOOBIG);
    CHECK_EQ(pp_exchange_active(queue), 0);
    CHECK_EQ(pp_exchange_unfinished(queue), 0);
    CHECK_OK(pp_exchange_next_id(queue, &next));
    CHECK_EQ(next, 0);
    pp_exchange_free(queue);
    /* pp_pmap with PP_REUSE shares its records instead of sending them: a
     * record over the maximum message size runs (square refuses its size). */
    CHECK_EQ(pp_pmap_status(square, big, size, outputs, sizeof outputs[0], 1, 2, &status), 1);
    CHECK_EQ(status, PP_EINVAL);
    CHECK_EQ(pp_pmap(square, big, size, outputs, sizeof outputs[0], 1, 2, PP_REUSE), PP_EREMOTE);
    free(big);
}

/* ---- Taking results ---- */

static void test_next_too_big_then_retry(void)
{
    size_t size = 100, len = 0;
    unsigned char buf[128];
    pp_exchange *queue;

    CHECK_OK(pp_queue_new(1, 0, &queue));
    CHECK_EQ(pp_exchange_call(queue, fill_bytes, &size, sizeof size, size), 0);
    CHECK_EQ(pp_exchange_next(queue, buf, 10, &len), PP_ETOOBIG);
    CHECK_EQ(len, size);
    len = 0;
    CHECK_EQ(pp_exchange_next(queue, NULL, 0, &len), PP_ETOOBIG); /* asking the size */
    CHECK_EQ(len, size);
    len = 0;
    CHECK_EQ(pp_exchange_next(queue, buf, sizeof buf, &len), 0); /* it stayed queued */
    CHECK_EQ(len, size);
    CHECK(filled(buf, size));
    CHECK_EQ(pp_exchange_next(queue, buf, sizeof buf, &len), PP_EDONE);
    pp_exchange_free(queue);
}

static void test_next_alloc(void)
{
    static const size_t sizes[] = {100000, 3, 0};
    enum { TASKS = sizeof sizes / sizeof sizes[0] };
    void *data;
    size_t len;
    pp_exchange *queue;
    int k;

    CHECK_OK(pp_queue_new(1, 0, &queue)); /* one at a time: in start order */
    for (k = 0; k < TASKS; k++)
        CHECK_EQ(pp_exchange_call(queue, fill_bytes, &sizes[k], sizeof sizes[k], sizes[k]), k);
    for (k = 0; k < TASKS; k++) {
        data = NULL;
        len = 1;
        CHECK_EQ(pp_exchange_next_alloc(queue, &data, &len), k);
        CHECK_EQ(len, sizes[k]);
        CHECK(filled(data, len));
        pp_free(data);
    }
    data = &len;
    CHECK_EQ(pp_exchange_next_alloc(queue, &data, &len), PP_EDONE);
    CHECK(data == &len); /* outputs are written only on success */
    pp_exchange_free(queue);
}

/* Reused workers of two functions, and of one function with outputs on
 * both sides of the library's stack buffer (256 bytes), in one map: each
 * result is its own call's. */
static void test_reused_calls_of_two_functions(void)
{
    enum { CALLS = 48 };
    unsigned char buf[600];
    size_t sizes[CALLS], len;
    int32_t x;
    pp_exchange *map;
    int k;

    CHECK_OK(pp_map_new(2, PP_REUSE, &map));
    for (k = 0; k < CALLS; k++) {
        if (k % 2) {
            x = k;
            CHECK_EQ(pp_exchange_call(map, square, &x, sizeof x, sizeof x), k);
        } else {
            sizes[k] = (size_t)k * 12; /* 0 to 552 bytes */
            CHECK_EQ(pp_exchange_call(map, fill_bytes, &sizes[k], sizeof sizes[k], sizes[k]), k);
        }
    }
    for (k = 0; k < CALLS; k++) {
        len = 0;
        CHECK_EQ(pp_exchange_next(map, buf, sizeof buf, &len), k);
        if (k % 2) {
            CHECK_EQ(len, sizeof x);
            memcpy(&x, buf, sizeof x);
            CHECK_EQ(x, k * k);
        } else {
            CHECK_EQ(len, sizes[k]);
            CHECK(filled(buf, len));
        }
    }
    CHECK_EQ(pp_exchange_next(map, buf, sizeof buf, &len), PP_EDONE);
    pp_exchange_free(map);
}

static void test_map_get_waits_only_for_its_task(void)
{
    int32_t k, value;
    pp_exchange *map, *queue;
    size_t len;

    CHECK_OK(pipe(gate));
    CHECK_OK(pp_map_new(3, 0, &map));
    value = 100;
    CHECK_EQ(pp_exchange_start(map, gated_echo_arg, &value, sizeof value), 0);
    for (value = 101; value <= 102; value++)
        CHECK_OK(pp_exchange_start(map, echo_arg, &value, sizeof value));

    /* Task 0 is held at the gate: getting task 1 must not wait for it. */
    CHECK_EQ(pp_map_get(map, 1, &value, sizeof value, &len), 0);
    CHECK_EQ(value, 101);
    CHECK_EQ(pp_map_get(map, 1, &value, sizeof value, &len), 0); /* not taken */
    CHECK_EQ(value, 101);
    CHECK_EQ(pp_map_get(map, 2, &value, 2, &len), PP_ETOOBIG);
    CHECK_EQ(len, sizeof value);
    gate_open(1);
    CHECK_EQ(pp_map_get(map, 0, &value, sizeof value, &len), 0);
    CHECK_EQ(value, 100);

    for (k = 0; k < 3; k++) {
        CHECK_EQ(pp_exchange_next(map, &value, sizeof value, &len), k);
        CHECK_EQ(value, 100 + k);
    }
    /* A map keeps its results until it is freed: read, they are still there
     * (this was PP_EDONE: the read had taken it). */
    for (k = 0; k < 3; k++) {
        CHECK_EQ(pp_map_get(map, (size_t)k, &value, sizeof value, &len), 0);
        CHECK_EQ(value, 100 + k);
    }
    CHECK_EQ(pp_exchange_next(map, &value, sizeof value, &len), PP_EDONE);
    CHECK_EQ(pp_map_get(map, 9, &value, sizeof value, &len), PP_EDONE); /* never started */
    CHECK_OK(pp_queue_new(1, 0, &queue));
    CHECK_EQ(pp_map_get(queue, 0, &value, sizeof value, &len), PP_EINVAL); /* not a map */
    pp_exchange_free(queue);
    pp_exchange_free(map);
    gate_remove();
}

/* ---- An exchange with a store callback ---- */

static void test_add_add_wait_and_finish(void)
{
    struct store_log log = {0, 0, 0};
    pp_exchange *ex;

    CHECK_OK(pp_exchange_new(2, 0, store_value, &log, &ex));
    CHECK_EQ(pp_exchange_unfinished(ex), 0);
    CHECK_EQ(pp_exchange_busy(ex), 0);
    CHECK_EQ(pp_exchange_add(ex, start_with_value(echo_arg, 10)), 0);
    CHECK_EQ(pp_exchange_add(ex, start_with_value(echo_arg, 20)), 1);
    CHECK_EQ(pp_exchange_active(ex), 2);
    CHECK_EQ(pp_exchange_busy(ex), 1);
    CHECK_EQ(pp_exchange_unfinished(ex), 1);

    /* At the limit: add_wait stores first. */
    CHECK_EQ(pp_exchange_add_wait(ex, start_with_value(echo_arg, 30)), 2);
    CHECK(log.count >= 1);
    CHECK(pp_exchange_active(ex) <= 2);

    CHECK_EQ(pp_exchange_finish(ex), 0);
    CHECK_EQ(log.count, 3);
    CHECK_EQ(log.sum, 10 + 20 + 30);
    CHECK_EQ(pp_exchange_active(ex), 0);
    CHECK_EQ(pp_exchange_unfinished(ex), 0);
    pp_exchange_free(ex);
}

/* Beyond the limit, pp_exchange_add still monitors the channel. */
static void test_add_beyond_the_limit(void)
{
    struct store_log log = {0, 0, 0};
    pp_exchange *ex;
    int k;

    CHECK_OK(pp_exchange_new(1, 0, store_value, &log, &ex));
    for (k = 1; k <= 3; k++)
        CHECK_EQ(pp_exchange_add(ex, start_with_value(echo_arg, k)), k - 1);
    CHECK_EQ(pp_exchange_active(ex), 3);
    CHECK_EQ(pp_exchange_finish(ex), 0);
    CHECK_EQ(log.sum, 1 + 2 + 3);
    pp_exchange_free(ex);
}

static void test_ready_store_timeout_and_remove(void)
{
    struct store_log log = {0, 0, 0};
    pp_channel *ready[4], *silent, *talker;
    pp_exchange *ex;
    int32_t value = 0;
    size_t len;

    CHECK_OK(pp_exchange_new(4, 0, store_value, &log, &ex));
    CHECK_EQ(pp_exchange_store(ex, 50), 0); /* nothing monitored: nothing to wait for */
    silent = start_child(serve_until_closed);
    CHECK_EQ(pp_exchange_add(ex, silent), 0);
    CHECK_EQ(pp_exchange_store(ex, 50), PP_ETIMEDOUT);
    CHECK_EQ(pp_exchange_store(ex, 0), PP_ETIMEDOUT);
    CHECK_EQ(pp_exchange_ready(ex, 0, ready, 4), 0);

    /* ready only reports: the caller receives, the callback is not called. */
    talker = start_with_value(echo_arg_and_stay, 40);
    CHECK_EQ(pp_exchange_add(ex, talker), 1);
    CHECK_EQ(pp_exchange_ready(ex, -1, ready, 4), 1);
    CHECK(ready[0] == talker);
    CHECK_OK(pp_receive(ready[0], &value, sizeof value, &len));
    CHECK_EQ(value, 40);
    CHECK_EQ(log.count, 0);
    CHECK_EQ(pp_exchange_ready(ex, 0, NULL, 0), 0); /* cap 0 needs no array */

    /* Removing closes (autoclose): both children see the end and exit. */
    CHECK_EQ(pp_exchange_remove(ex, talker), 0);
    CHECK_EQ(pp_exchange_active(ex), 1);
    CHECK_EQ(pp_exchange_remove(ex, silent), 0);
    CHECK_EQ(pp_exchange_active(ex), 0);
    CHECK_EQ(pp_exchange_unfinished(ex), 0);
    pp_exchange_free(ex);
}

/* A pp_exchange_ready loop that receives the results itself ends, with or
 * without reuse: what it receives finishes the tasks (waiting ones start,
 * idle workers stop), and pp_exchange_finish reports none of them as lost. */
static void check_ready_loop(unsigned flags)
{
    struct store_log log = {0, 0, 0};
    pp_channel *ready[4];
    int32_t value, sum = 0;
    int received = 0;
    size_t len;
    pp_exchange *ex;

    CHECK_OK(pp_exchange_new(2, flags, store_value, &log, &ex));
    for (int32_t k = 1; k <= 6; k++)
        CHECK(pp_exchange_start(ex, echo_arg, &k, sizeof k) >= 0);
    while (pp_exchange_unfinished(ex) == 1) {
        int n = pp_exchange_ready(ex, -1, ready, 4);

        CHECK(n >= 0);
        for (int i = 0; i < n; i++) {
            if (pp_receive(ready[i], &value, sizeof value, &len) == 0) {
                sum += value;
                received++;
            }
        }
    }
    CHECK_EQ(received, 6);
    CHECK_EQ(sum, 21);
    CHECK_EQ(pp_exchange_finish(ex), 0);
    CHECK_EQ(log.count, 0); /* the store callback saw nothing */
    pp_exchange_free(ex);
}

/* pprocess's raw loop: while active, receive from every ready channel.
 * Every channel pp_exchange_ready gives has a message (an ended one is
 * removed and reported, not given: its receive used to fail with the end),
 * the loop ends by itself, and each process is reported removed once. */
static void check_raw_ready_loop(unsigned flags)
{
    struct store_log log = {0, 0, 0};
    pp_channel *ready[4], *channels[8];
    int pids[8], started[8];
    int32_t value, sum = 0;
    int k, n, active, removed = 0, received = 0, nstarted = 0;
    size_t len;
    pp_exchange *ex;

    CHECK_OK(pp_exchange_new(3, flags, store_value, &log, &ex));
    for (int32_t v = 1; v <= 6; v++)
        CHECK(pp_exchange_start(ex, echo_arg, &v, sizeof v) >= 0);
    active = pp_exchange_channels(ex, channels, 8);
    CHECK_EQ(active, pp_exchange_active(ex));
    CHECK(active >= 1 && active <= 3);
    for (k = 0; k < active && k < 8; k++)
        started[nstarted++] = pp_channel_pid(channels[k]);
    CHECK_EQ(pp_exchange_channels(ex, NULL, 0), active);
    while (pp_exchange_active(ex) > 0) {
        n = pp_exchange_ready(ex, -1, ready, 4);
        CHECK(n >= 0);
        for (k = 0; k < n; k++) {
            CHECK_EQ(pp_receive(ready[k], &value, sizeof value, &len), 0);
            sum += value;
            received++;
        }
        n = pp_exchange_removed(ex, pids, NULL, 8);
        CHECK(n >= 0 && n <= 8);
        for (k = 0; k < n; k++)
            for (int i = 0; i < nstarted; i++)
                if (started[i] == pids[k])
                    started[i] = -1;
        removed += n;
    }
    CHECK_EQ(received, 6);
    CHECK_EQ(sum, 21);
    CHECK(removed >= 1);
    for (k = 0; k < nstarted; k++)
        CHECK_EQ(started[k], -1); /* each channel first active was removed */
    CHECK_EQ(pp_exchange_finish(ex), 0);
    CHECK_EQ(log.count, 0);
    CHECK_EQ(pp_exchange_channels(NULL, channels, 8), PP_EINVAL);
    CHECK_EQ(pp_exchange_removed(NULL, pids, NULL, 8), PP_EINVAL);
    pp_exchange_free(ex);
}

/* A result received after pp_exchange_ready, then its channel removed: the
 * task has its result, and no failure is reported for it (it was reported
 * PP_ECLOSED: the removal did not count what the program had received). */
static void test_remove_after_receiving_reports_no_failure(void)
{
    struct store_log log = {0, 0, 0};
    pp_channel *ready[1];
    int32_t value = 7, got = 0;
    size_t len;
    pp_exchange *ex;
    int n = 0;

    CHECK_OK(pp_exchange_new(1, 0, store_value, &log, &ex));
    CHECK_EQ(pp_exchange_start(ex, echo_arg_and_stay, &value, sizeof value), 0);
    while (n == 0) {
        n = pp_exchange_ready(ex, -1, ready, 1);
        CHECK(n >= 0);
    }
    CHECK_EQ(pp_receive(ready[0], &got, sizeof got, &len), 0);
    CHECK_EQ(got, 7);
    CHECK_EQ(pp_exchange_remove(ex, ready[0]), 0);
    CHECK_EQ(pp_exchange_finish(ex), 0); /* no failure to report */
    CHECK_EQ(log.count, 0);
    pp_exchange_free(ex);
}

static void test_ready_loop_ends(void)
{
    check_ready_loop(0);
    check_ready_loop(PP_REUSE);
    check_raw_ready_loop(0);
    check_raw_ready_loop(PP_REUSE);
}

static void test_wait_gets_below_the_limit(void)
{
    struct store_log log = {0, 0, 0};
    pp_exchange *ex;

    CHECK_OK(pp_exchange_new(2, 0, store_value, &log, &ex));
    CHECK_EQ(pp_exchange_wait(ex), 0); /* nothing to wait for */
    CHECK_EQ(pp_exchange_add(ex, start_with_value(echo_arg, 1)), 0);
    CHECK_EQ(pp_exchange_add(ex, start_with_value(echo_arg, 2)), 1);
    CHECK_EQ(pp_exchange_busy(ex), 1);
    CHECK_EQ(pp_exchange_wait(ex), 0);
    CHECK_EQ(pp_exchange_busy(ex), 0);
    CHECK(log.count >= 1);
    CHECK_EQ(pp_exchange_finish(ex), 0);
    CHECK_EQ(log.count, 2);
    pp_exchange_free(ex);
}

static void test_store_callback_error(void)
{
    struct store_log log = {0, 0, 1};
    pp_exchange *ex;

    CHECK_OK(pp_exchange_new(2, 0, store_value, &log, &ex));
    CHECK_EQ(pp_exchange_add(ex, start_with_value(echo_arg_and_stay, 5)), 0);
    CHECK_EQ(pp_exchange_store(ex, -1), STORE_FAILURE);
    CHECK_EQ(log.count, 1);
    pp_exchange_free(ex); /* closes the channel: the child exits */
}

/* A pp_callable that kills its own process before answering. */
static int die_now(pp_channel *ch, const void *arg, size_t arg_len)
{
    (void)ch, (void)arg, (void)arg_len;
    kill(getpid(), SIGKILL);
    return 0;
}

/* With a store callback, failed tasks come out of store/wait/finish, one per
 * call, as pprocess re-raises a child's error. */
static void test_custom_store_reports_failed_tasks(void)
{
    struct store_log log = {0, 0, 0};
    int32_t code = 77;
    const char *message = NULL;
    int rc, seen_remote = 0, seen_peer = 0, k, got = 0;
    pp_exchange *ex;

    CHECK_OK(pp_exchange_new(2, 0, store_value, &log, &ex));
    CHECK_OK(pp_exchange_start(ex, fail_with, &code, sizeof code));
    CHECK_OK(pp_exchange_start(ex, die_now, NULL, 0));
    CHECK_OK(pp_exchange_start(ex, echo_arg, &code, sizeof code));
    for (k = 0; k < 3; k++) {
        rc = pp_exchange_finish(ex);
        if (rc == PP_EREMOTE) {
            seen_remote++;
            CHECK_EQ(pp_exchange_task_error(ex, &got, &message), 1);
            CHECK_EQ(got, 77);
            CHECK(message != NULL && strstr(message, "77") != NULL);
        } else if (rc == PP_EPEER) {
            seen_peer++;
        } else {
            CHECK_EQ(rc, 0);
        }
    }
    CHECK_EQ(seen_remote, 1);
    CHECK_EQ(seen_peer, 1);
    CHECK_EQ(pp_exchange_finish(ex), 0); /* everything reported */
    CHECK_EQ(log.count, 1);               /* the one good task */
    CHECK_EQ(log.sum, 77);
    pp_exchange_free(ex);
}

/* Removing a channel that is not in the exchange is an error, whatever the flags. */
static void test_remove_foreign_channel(void)
{
    struct store_log log = {0, 0, 0};
    pp_exchange *ex;
    pp_channel *stranger = start_child(echo_until_closed);

    CHECK_OK(pp_exchange_new(2, 0, store_value, &log, &ex));
    CHECK_EQ(pp_exchange_remove(ex, stranger), PP_EINVAL);
    CHECK_OK(pp_send(stranger, "ok", 3)); /* untouched */
    pp_channel_close(stranger);
    pp_exchange_free(ex);
}

static void test_keep_removed(void)
{
    struct store_log log = {0, 0, 0};
    char buf[8] = "";
    pp_exchange *ex;
    pp_channel *ch;
    size_t len = 0;

    CHECK_OK(pp_exchange_new(2, PP_KEEP_REMOVED, store_value, &log, &ex));
    ch = start_child(echo_until_closed);
    CHECK_EQ(pp_exchange_add(ex, ch), 0);
    CHECK_EQ(pp_exchange_remove(ex, ch), 0);
    CHECK_EQ(pp_exchange_active(ex), 0);
    CHECK_EQ(pp_exchange_remove(ex, ch), PP_EINVAL); /* no longer in it */

    /* The channel is the caller's again, still open. */
    CHECK_OK(pp_send(ch, "ping", 5));
    CHECK_OK(pp_receive(ch, buf, sizeof buf, &len));
    CHECK_EQ(len, 5);
    CHECK(strcmp(buf, "ping") == 0);
    pp_exchange_free(ex);
    CHECK_OK(pp_send(ch, "pong", 5)); /* freeing the exchange left it alone */
    CHECK_OK(pp_receive(ch, buf, sizeof buf, &len));
    CHECK(strcmp(buf, "pong") == 0);
    pp_channel_close(ch);
}

/* ---- pp_exchange_create ---- */

static void test_exchange_create(void)
{
    enum { TASKS = 6 };
    int pids[TASKS] = {0};
    struct answer answer;
    pp_exchange *map;
    pp_channel *child;
    int k;

    CHECK_OK(pp_map_new(2, 0, &map));
    for (k = 0; k < TASKS; k++) {
        pids[k] = pp_exchange_create(map, &child);
        if (pids[k] == 0) {
            /* The created process: answer and leave. */
            answer.index = k;
            answer.pid = (int32_t)getpid();
            answer.siblings = 0;
            sleep_ms(shuffled_ms(k, TASKS, 5));
            pp_exit(child, pp_send(child, &answer, sizeof answer) < 0);
        }
        CHECK(pids[k] > 0);
        CHECK(pp_exchange_active(map) <= 2);
    }
    for (k = 0; k < TASKS; k++) {
        CHECK_EQ(next_answer(map, &answer), k);
        CHECK_EQ(answer.index, k);
        CHECK_EQ(answer.pid, pids[k]);
    }
    CHECK_EQ(next_answer(map, &answer), PP_EDONE);
    pp_exchange_free(map);
}

/* ---- pp_pmap ---- */

static void check_pmap(size_t limit, unsigned flags)
{
    enum { COUNT = 100, FAILING = 13 };
    int32_t inputs[COUNT], outputs[COUNT];
    int k;

    for (k = 0; k < COUNT; k++)
        inputs[k] = k;
    memset(outputs, 0xff, sizeof outputs);
    CHECK_EQ(pp_pmap(square, inputs, sizeof inputs[0], outputs, sizeof outputs[0], COUNT, limit,
                     flags),
             0);
    for (k = 0; k < COUNT; k++)
        CHECK_EQ(outputs[k], k * k);

    /* A failing record: its error is returned, every other output is there,
     * and its own is left as it was (with PP_REUSE or without). */
    inputs[FAILING] = FAILING_INPUT;
    memset(outputs, 0xff, sizeof outputs);
    CHECK_EQ(pp_pmap(square, inputs, sizeof inputs[0], outputs, sizeof outputs[0], COUNT, limit,
                     flags),
             PP_EREMOTE);
    for (k = 0; k < COUNT; k++)
        if (k != FAILING)
            CHECK_EQ(outputs[k], k * k);
    CHECK_EQ(outputs[FAILING], -1);
}

static void test_pmap(void)
{
    check_pmap(4, 0);
    check_pmap(4, PP_REUSE);
    check_pmap(1, PP_REUSE);
    check_pmap(2, PP_REUSE | PP_BATCH);
    check_pmap(0, 0); /* one process per processor */
}

/* The input pp_pmap_status's square_or_die kills its own worker for. */
#define DEADLY_INPUT (-2)

/* square, except that DEADLY_INPUT kills the worker running it. */
static int square_or_die(const void *input, size_t input_len, void *output, size_t output_cap,
                         size_t *output_len)
{
    int32_t x;

    memcpy(&x, input, sizeof x);
    if (x == DEADLY_INPUT)
        kill(getpid(), SIGKILL);
    return square(input, input_len, output, output_cap, output_len);
}

/* pp_pmap_status: each failed record at its index; a worker killed in the
 * middle of its records fails that record only. */
static void test_pmap_status(void)
{
    enum { COUNT = 1000, FAILING = 13, DEADLY = 101 };
    static int32_t inputs[COUNT], outputs[COUNT];
    static int status[COUNT];
    int k;

    for (k = 0; k < COUNT; k++)
        inputs[k] = k;
    inputs[FAILING] = FAILING_INPUT;
    inputs[DEADLY] = DEADLY_INPUT;
    memset(status, 0x55, sizeof status);
    CHECK_EQ(pp_pmap_status(square_or_die, inputs, sizeof inputs[0], outputs, sizeof outputs[0],
                            COUNT, 2, status),
             2);
    for (k = 0; k < COUNT; k++) {
        if (k == FAILING)
            CHECK_EQ(status[k], TASK_FAILURE);
        else if (k == DEADLY)
            CHECK_EQ(status[k], PP_EPEER);
        else {
            CHECK_EQ(status[k], 0);
            CHECK_EQ(outputs[k], k * k);
        }
    }
    /* Without a status array (square does not die: one failure). */
    CHECK_EQ(pp_pmap_status(square, inputs, sizeof inputs[0], outputs, sizeof outputs[0], COUNT,
                            0, NULL),
             1);
    /* pp_pmap with PP_REUSE gives the first failure in input order. */
    CHECK_EQ(pp_pmap(square_or_die, inputs, sizeof inputs[0], outputs, sizeof outputs[0], COUNT,
                     2, PP_REUSE),
             PP_EREMOTE);
    /* In place: the outputs over the inputs, pages of them, all read. */
    {
        enum { MANY = 8192 };
        static int32_t records[MANY];

        for (k = 0; k < MANY; k++)
            records[k] = k % 1000;
        CHECK_EQ(pp_pmap_status(square, records, sizeof records[0], records, sizeof records[0],
                                MANY, 2, NULL),
                 0);
        for (k = 0; k < MANY; k++)
            CHECK_EQ(records[k], (k % 1000) * (k % 1000));
    }
    /* No records: nothing runs. Bad arguments: nothing runs either. */
    CHECK_EQ(pp_pmap_status(square, NULL, sizeof inputs[0], NULL, sizeof outputs[0], 0, 2, NULL),
             0);
    CHECK_EQ(pp_pmap_status(NULL, inputs, sizeof inputs[0], outputs, sizeof outputs[0], COUNT, 2,
                            status),
             PP_EINVAL);
    CHECK_EQ(pp_pmap_status(square, inputs, SIZE_MAX, outputs, sizeof outputs[0], COUNT, 2,
                            status),
             PP_EINVAL);
}

/* A pp_function writing one byte, 0x7f. */
static int one_byte(const void *input, size_t input_len, void *output, size_t output_cap,
                    size_t *output_len)
{
    (void)input;
    (void)input_len;
    if (output_cap < 1)
        return PP_EINVAL;
    *(unsigned char *)output = 0x7f;
    *output_len = 1;
    return 0;
}

static void test_pmap_zero_fills_short_outputs(void)
{
    unsigned char inputs[3] = {0}, outputs[3][4];
    int k;

    memset(outputs, 0xff, sizeof outputs);
    CHECK_EQ(pp_pmap(one_byte, inputs, 1, outputs, 4, 3, 2, 0), 0);
    for (k = 0; k < 3; k++)
        CHECK(outputs[k][0] == 0x7f && outputs[k][1] == 0 && outputs[k][2] == 0 &&
              outputs[k][3] == 0);
    CHECK_EQ(pp_pmap(one_byte, NULL, 1, NULL, 4, 0, 2, 0), 0); /* no records */
}

/* ---- Leaks ---- */

/* MANY_TASKS tasks through a limit-4 exchange leave no descriptor, no
 * process and no zombie behind once it is freed. */
static void check_many_tasks_leave_nothing(unsigned flags)
{
    int fds, k, rc, answered = 0, misplaced = 0;
    struct children children;
    struct answer answer;
    pp_exchange *queue;

    CHECK_OK(pp_waitall()); /* the children of earlier tests */
    fds = open_fds();
    CHECK_OK(pp_queue_new(4, flags, &queue));
    for (k = 0; k < MANY_TASKS; k++)
        if (call_job(queue, k, 0, ANSWER) != k)
            misplaced++;
    while ((rc = next_answer(queue, &answer)) >= 0) {
        answered++;
        misplaced += answer.index != rc;
    }
    CHECK_EQ(rc, PP_EDONE);
    CHECK_EQ(answered, MANY_TASKS);
    CHECK_EQ(misplaced, 0);
    pp_exchange_free(queue);

    children = children_of(getpid());
    CHECK_EQ(open_fds(), fds);
    CHECK_EQ(children.live, 0);
    CHECK_EQ(children.zombies, 0);
}

static void test_many_tasks_leave_nothing(void)
{
    check_many_tasks_leave_nothing(0);
    check_many_tasks_leave_nothing(PP_REUSE);
}

/* ---- Bad arguments ---- */

static void test_null_exchange(void)
{
    pp_channel *ch = NULL;
    char buf[8];
    void *data;
    size_t len;
    int code;
    const char *message;

    CHECK_EQ(pp_exchange_add(NULL, NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_add_wait(NULL, NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_active(NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_ready(NULL, 0, &ch, 1), PP_EINVAL);
    CHECK_EQ(pp_exchange_remove(NULL, NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_busy(NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_unfinished(NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_wait(NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_store(NULL, 0), PP_EINVAL);
    CHECK_EQ(pp_exchange_finish(NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_start(NULL, echo_arg, NULL, 0), PP_EINVAL);
    CHECK_EQ(pp_exchange_call(NULL, square, NULL, 0, 4), PP_EINVAL);
    CHECK_EQ(pp_exchange_create(NULL, &ch), PP_EINVAL); /* and no process */
    CHECK_EQ(pp_exchange_next(NULL, buf, sizeof buf, &len), PP_EINVAL);
    CHECK_EQ(pp_exchange_next_alloc(NULL, &data, &len), PP_EINVAL);
    CHECK_EQ(pp_map_get(NULL, 0, buf, sizeof buf, &len), PP_EINVAL);
    CHECK_EQ(pp_exchange_task_error(NULL, &code, &message), PP_EINVAL);
    CHECK(ch == NULL);
    pp_exchange_free(NULL);
}

static void test_null_arguments(void)
{
    pp_exchange *ex = NULL, *queue, *map;
    int32_t input = 2, output = 0;
    char buf[8];
    void *data;
    size_t len;

    CHECK_EQ(pp_exchange_new(1, 0, NULL, NULL, &ex), PP_EINVAL);
    CHECK_EQ(pp_exchange_new(1, 0, store_value, NULL, NULL), PP_EINVAL);
    CHECK_EQ(pp_queue_new(1, 0, NULL), PP_EINVAL);
    CHECK_EQ(pp_map_new(1, 0, NULL), PP_EINVAL);
    CHECK(ex == NULL);

    CHECK_OK(pp_queue_new(1, 0, &queue));
    CHECK_OK(pp_map_new(1, 0, &map));
    CHECK_EQ(pp_exchange_add(queue, NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_add_wait(queue, NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_ready(queue, 0, NULL, 1), PP_EINVAL);
    CHECK_EQ(pp_exchange_remove(queue, NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_start(queue, NULL, NULL, 0), PP_EINVAL);
    CHECK_EQ(pp_exchange_start(queue, echo_arg, NULL, 4), PP_EINVAL);
    CHECK_EQ(pp_exchange_call(queue, NULL, &input, sizeof input, 4), PP_EINVAL);
    CHECK_EQ(pp_exchange_call(queue, square, NULL, sizeof input, 4), PP_EINVAL);
    CHECK_EQ(pp_exchange_create(queue, NULL), PP_EINVAL); /* and no process */
    CHECK_EQ(pp_exchange_next(queue, buf, sizeof buf, NULL), PP_EINVAL);
    CHECK_EQ(pp_exchange_next(queue, NULL, sizeof buf, &len), PP_EINVAL);
    CHECK_EQ(pp_exchange_next_alloc(queue, NULL, &len), PP_EINVAL);
    CHECK_EQ(pp_exchange_next_alloc(queue, &data, NULL), PP_EINVAL);
    CHECK_EQ(pp_map_get(map, 0, buf, sizeof buf, NULL), PP_EINVAL);
    CHECK_EQ(pp_map_get(map, 0, NULL, sizeof buf, &len), PP_EINVAL);
    CHECK_EQ(pp_exchange_task_error(queue, NULL, NULL), 0); /* nothing failed */

    CHECK_EQ(pp_pmap(NULL, &input, 4, &output, 4, 1, 1, 0), PP_EINVAL);
    CHECK_EQ(pp_pmap(square, NULL, 4, &output, 4, 1, 1, 0), PP_EINVAL);
    CHECK_EQ(pp_pmap(square, &input, 4, NULL, 4, 1, 1, 0), PP_EINVAL);

    /* Nothing was started by any of these. */
    CHECK_EQ(pp_exchange_active(queue), 0);
    CHECK_EQ(pp_exchange_unfinished(queue), 0);
    CHECK_EQ(pp_exchange_next(queue, buf, sizeof buf, &len), PP_EDONE);
    CHECK_EQ(pp_exchange_active(map), 0);
    pp_exchange_free(queue);
    pp_exchange_free(map);
}

static void test_bad_flags(void)
{
    const unsigned unknown = 16; /* the first bit no PP_ flag uses */
    pp_exchange *ex = NULL;
    int32_t input = 2, output = 0;

    CHECK_EQ(pp_exchange_new(1, unknown, store_value, NULL, &ex), PP_EINVAL);
    CHECK_EQ(pp_queue_new(1, unknown, &ex), PP_EINVAL);
    CHECK_EQ(pp_queue_new(1, 0x80000000u, &ex), PP_EINVAL);
    CHECK_EQ(pp_map_new(1, unknown, &ex), PP_EINVAL);
    CHECK_EQ(pp_map_new(1, PP_CONTINUOUS, &ex), PP_EINVAL); /* one result per task */
    CHECK(ex == NULL);
    CHECK_EQ(pp_pmap(square, &input, 4, &output, 4, 1, 1, unknown), PP_EINVAL);
    CHECK_EQ(pp_pmap(square, &input, 4, &output, 4, 1, 1, PP_CONTINUOUS), PP_EINVAL);
    CHECK_EQ(pp_pmap(square, &input, 4, &output, 4, 1, 1, PP_KEEP_REMOVED), PP_EINVAL);
    CHECK_EQ(output, 0);

    /* Every known flag together is fine for a queue. */
    CHECK_OK(pp_queue_new(1, PP_REUSE | PP_CONTINUOUS | PP_KEEP_REMOVED, &ex));
    pp_exchange_free(ex);
}

int main(void)
{
    RUN(test_limit_seen_from_children);
    RUN(test_waiting_list_drains);
    RUN(test_map_keeps_start_order);
    RUN(test_queue_yields_each_once);
    RUN(test_reuse);
    RUN(test_reused_callables_keep_their_own_tasks);
    RUN(test_unlimited_starts_every_never_ending_task);
    RUN(test_remove_after_receiving_reports_no_failure);
    RUN(test_continuous_tasks_send_many_results);
    RUN(test_pp_exit_in_a_batching_worker_loses_no_answer);
    RUN(test_killed_worker);
    RUN(test_killed_workers_lose_no_held_answer);
    RUN(test_reused_chunks_lose_nothing_when_a_worker_dies);
    RUN(test_function_error);
    RUN(test_callable_error);
    RUN(test_failed_task_id_is_known);
    RUN(test_oversized_reused_argument_starts_nothing);
    RUN(test_next_too_big_then_retry);
    RUN(test_next_alloc);
    RUN(test_reused_calls_of_two_functions);
    RUN(test_map_get_waits_only_for_its_task);
    RUN(test_add_add_wait_and_finish);
    RUN(test_add_beyond_the_limit);
    RUN(test_ready_store_timeout_and_remove);
    RUN(test_ready_loop_ends);
    RUN(test_wait_gets_below_the_limit);
    RUN(test_store_callback_error);
    RUN(test_keep_removed);
    RUN(test_exchange_create);
    RUN(test_pmap);
    RUN(test_pmap_status);
    RUN(test_pmap_zero_fills_short_outputs);
    RUN(test_many_tasks_leave_nothing);
    RUN(test_custom_store_reports_failed_tasks);
    RUN(test_remove_foreign_channel);
    RUN(test_null_exchange);
    RUN(test_null_arguments);
    RUN(test_bad_flags);
    return report();
}
