/*
 * Background queues from C (pp_queue_new + pp_exchange_connect): a result is
 * acknowledged to the background process when pp_exchange_next takes it, not
 * when the queue reads it ahead, so a client killed with results still in its
 * queue loses none; pp_exchange_finish and a connect at the limit, which wait
 * for connections to end, acknowledge what the queue holds.
 *
 * A test that hangs is ended by check.h's alarm: "no hang" needs no timing.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"

enum {
    RESULTS = 100, /* results of each background process: beyond its window */
    TAKEN = 3      /* results the killed client takes */
};

static char dir[64];

/* A socket path in this run's private directory. */
static const char *address(const char *name)
{
    static char path[128];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* The background work: RESULTS numbers, from the int32_t at arg. */
static int numbers(pp_channel *ch, const void *arg, size_t arg_len)
{
    int32_t first, n;
    int rc;

    if (arg_len != sizeof first)
        return PP_EINVAL;
    memcpy(&first, arg, sizeof first);
    for (n = first; n < first + RESULTS; n++)
        if ((rc = pp_send(ch, &n, sizeof n)) < 0)
            return rc;
    return 0;
}

static void start_numbers(const char *path, int32_t first)
{
    CHECK_OK(pp_start_persistent(path, numbers, &first, sizeof first));
}

/* Takes the next result of a queue: the number, or -1. */
static int32_t next_number(pp_exchange *queue)
{
    int32_t n = -1;
    size_t len = 0;
    int rc = pp_exchange_next(queue, &n, sizeof n, &len);

    CHECK_OK(rc);
    CHECK_EQ(len, sizeof n);
    return rc < 0 ? -1 : n;
}

/* The killed client: takes TAKEN results, lets its queue read more ahead,
 * tells its creator how many it took, and is killed. */
static int killed_client(pp_channel *ch)
{
    pp_exchange *queue;
    int32_t taken = 0;
    size_t len;
    int k, n;

    if (pp_queue_new(1, 0, &queue) < 0 || pp_exchange_connect(queue, address("task.socket")) < 0)
        return 1;
    while (taken < TAKEN && pp_exchange_next(queue, &n, sizeof n, &len) >= 0 && n == taken)
        taken++;
    for (k = 0; k < 40; k++) /* read ahead, take nothing */
        if (pp_exchange_store(queue, 100) <= 0)
            break;
    if (pp_send(ch, &taken, sizeof taken) < 0)
        return 1;
    kill(getpid(), SIGKILL);
    return 1;
}

static void test_killed_queue_client_loses_nothing(void)
{
    pp_channel *client, *ch;
    int32_t taken = -1, n, expected = TAKEN;
    size_t len;
    int rc;

    start_numbers(address("task.socket"), 0);
    client = create_child(killed_client);
    if (client == NULL)
        return;
    CHECK_EQ(pp_receive(client, &taken, sizeof taken, &len), 0);
    CHECK_EQ(taken, TAKEN);
    CHECK_EQ(wait_exit_code(client), 128 + SIGKILL);
    pp_channel_close(client);

    /* The next client gets exactly what the killed one did not take, the
     * results its queue had read ahead included. */
    rc = pp_connect(address("task.socket"), &ch);
    CHECK_EQ(rc, 0); /* -ENOENT: it finished, the results read ahead lost */
    if (rc < 0)
        return;
    while ((rc = pp_receive_timeout(ch, &n, sizeof n, &len, 20000)) == 0) {
        CHECK_EQ(n, expected);
        expected++;
    }
    CHECK_EQ(rc, PP_ECLOSED);
    CHECK_EQ(expected, RESULTS);
    pp_channel_close(ch);
}

static void test_finish_acknowledges_what_the_queue_holds(void)
{
    pp_exchange *queue;
    int32_t k;
    size_t len;

    start_numbers(address("finish.socket"), 0);
    CHECK_EQ(pp_queue_new(1, 0, &queue), 0);
    CHECK_OK(pp_exchange_connect(queue, address("finish.socket")));
    /* More results than the background process sends unacknowledged: the
     * wait for its end acknowledges what the queue stores. */
    CHECK_EQ(pp_exchange_finish(queue), 0);
    CHECK_EQ(access(address("finish.socket"), F_OK), -1); /* it has finished */
    for (k = 0; k < RESULTS; k++)
        CHECK_EQ(next_number(queue), k);
    CHECK_EQ(pp_exchange_next(queue, &k, sizeof k, &len), PP_EDONE);
    pp_exchange_free(queue);
}

static void test_connect_at_the_limit(void)
{
    pp_exchange *queue;
    int32_t k, n, seen[2] = {0, 0};

    start_numbers(address("a.socket"), 0);
    start_numbers(address("b.socket"), 1000);
    CHECK_EQ(pp_queue_new(1, 0, &queue), 0);
    CHECK_OK(pp_exchange_connect(queue, address("a.socket")));
    /* Waits for the first connection to end, acknowledging its results. */
    CHECK_OK(pp_exchange_connect(queue, address("b.socket")));
    for (k = 0; k < 2 * RESULTS; k++) {
        n = next_number(queue);
        if (n >= 0 && n % 1000 == seen[n / 1000])
            seen[n / 1000]++;
    }
    CHECK_EQ(seen[0], RESULTS);
    CHECK_EQ(seen[1], RESULTS);
    CHECK_EQ(pp_exchange_finish(queue), 0);
    pp_exchange_free(queue);
}

/* Waits until the keeper at `path` has removed its socket file (it does so
 * as it leaves, just after its client saw the end). */
static void wait_gone(const char *path)
{
    struct timespec millisecond = {0, 1000000};

    while (access(path, F_OK) == 0)
        nanosleep(&millisecond, NULL);
}

/* Collects every result of the process at `path` on a plain channel. */
static void collect_numbers(const char *path)
{
    pp_channel *ch;
    int32_t n, expected = 0;
    size_t len;
    int rc;

    CHECK_EQ(pp_connect(path, &ch), 0);
    while ((rc = pp_receive_timeout(ch, &n, sizeof n, &len, 20000)) == 0)
        CHECK_EQ(n, expected++);
    CHECK_EQ(rc, PP_ECLOSED);
    CHECK_EQ(expected, RESULTS);
    pp_channel_close(ch);
}

static void test_connect_refuses_a_symlink(void)
{
    char real[128];
    pp_channel *ch = NULL;
    int32_t first = 0;

    snprintf(real, sizeof real, "%s", address("real.socket"));
    start_numbers(real, 0);
    CHECK_EQ(symlink(real, address("planted.socket")), 0);
    CHECK_EQ(pp_connect(address("planted.socket"), &ch), PP_EADDR);
    CHECK_EQ(pp_start_persistent(address("planted.socket"), numbers, &first, sizeof first),
             PP_EADDR);
    CHECK_EQ(unlink(address("planted.socket")), 0);
    collect_numbers(real); /* nobody else took any */
    wait_gone(real);
}

static void test_the_keeper_holds_none_of_its_starters_descriptors(void)
{
    char fd_dir[64], link[384], target[128], ours[2][128];
    struct dirent *entry;
    int pipe_fds[2], k, pid, held = 0, shared = 0;
    int32_t first = 0;
    ssize_t n;
    DIR *fds;

    CHECK_EQ(pipe(pipe_fds), 0);
    for (k = 0; k < 2; k++) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", pipe_fds[k]);
        n = readlink(link, ours[k], sizeof ours[k] - 1);
        ours[k][n < 0 ? 0 : n] = '\0';
    }
    pid = pp_start_persistent(address("fds.socket"), numbers, &first, sizeof first);
    CHECK(pid > 0);
    snprintf(fd_dir, sizeof fd_dir, "/proc/%d/fd", pid);
    fds = opendir(fd_dir);
    CHECK(fds != NULL);
    while (fds != NULL && (entry = readdir(fds)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        snprintf(link, sizeof link, "%s/%s", fd_dir, entry->d_name);
        n = readlink(link, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = '\0';
        held++;
        for (k = 0; k < 2; k++)
            shared += strcmp(target, ours[k]) == 0;
    }
    if (fds != NULL)
        closedir(fds);
    CHECK_EQ(shared, 0);
    CHECK(held > 0); /* (how many depends on valgrind, which keeps its own) */
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    collect_numbers(address("fds.socket"));
    wait_gone(address("fds.socket"));
}

static void test_a_killed_keeper_is_reported_not_taken_for_the_end(void)
{
    pp_channel *ch;
    pp_exchange *queue;
    int32_t first = 0, n;
    size_t len;
    int pid, rc, k;

    /* A channel: the results on their way arrive, then PP_EPEER. */
    pid = pp_start_persistent(address("killed.socket"), numbers, &first, sizeof first);
    CHECK(pid > 0);
    CHECK_EQ(pp_connect(address("killed.socket"), &ch), 0);
    for (k = 0; k < 2; k++)
        CHECK_EQ(pp_receive_timeout(ch, &n, sizeof n, &len, 20000), 0);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    while ((rc = pp_receive_timeout(ch, &n, sizeof n, &len, 20000)) == 0)
        ;
    CHECK_EQ(rc, PP_EPEER);
    pp_channel_close(ch);
    unlink(address("killed.socket")); /* the dead keeper's stale socket */

    /* A background queue: the task fails with PP_EPEER before PP_EDONE. */
    pid = pp_start_persistent(address("killed.socket"), numbers, &first, sizeof first);
    CHECK(pid > 0);
    CHECK_EQ(pp_queue_new(1, 0, &queue), 0);
    CHECK_OK(pp_exchange_connect(queue, address("killed.socket")));
    for (k = 0; k < 2; k++)
        CHECK_EQ(next_number(queue), k);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    while ((rc = pp_exchange_next(queue, &n, sizeof n, &len)) >= 0)
        ;
    CHECK_EQ(rc, PP_EPEER);
    CHECK_EQ(pp_exchange_next(queue, &n, sizeof n, &len), PP_EDONE);
    pp_exchange_free(queue);
    unlink(address("killed.socket"));
}

static int nothing(pp_channel *ch, const void *arg, size_t arg_len)
{
    (void)ch;
    (void)arg;
    (void)arg_len;
    return 0;
}

static void test_a_refused_second_start_does_not_end_the_first(void)
{
    pp_channel *ch;
    int32_t n;
    size_t len;

    CHECK_OK(pp_start_persistent(address("probe.socket"), nothing, NULL, 0));
    CHECK_EQ(pp_start_persistent(address("probe.socket"), nothing, NULL, 0), PP_EADDR);
    CHECK_EQ(pp_connect(address("probe.socket"), &ch), 0);
    CHECK_EQ(pp_receive_timeout(ch, &n, sizeof n, &len, 20000), PP_ECLOSED);
    pp_channel_close(ch);
    wait_gone(address("probe.socket"));
}

static void test_an_exchange_never_kills_a_created_keeper(void)
{
    pp_channel *ch;
    pp_exchange *queue;
    int32_t n;
    size_t len;
    int pid, k;

    pid = pp_create_persistent(address("add.socket"), &ch);
    CHECK_OK(pid);
    if (pid == 0) {
        for (n = 0; n < RESULTS; n++)
            if (pp_send(ch, &n, sizeof n) < 0)
                pp_exit(ch, 1);
        pp_exit(ch, 0);
    }
    if (pid < 0)
        return;
    CHECK_EQ(pp_queue_new(1, 0, &queue), 0);
    CHECK_OK(pp_exchange_add(queue, ch));
    CHECK_EQ(next_number(queue), 0);
    for (k = 0; k < 10; k++) /* read ahead, take nothing */
        if (pp_exchange_store(queue, 100) <= 0)
            break;
    pp_exchange_free(queue);
    CHECK_EQ(kill(pid, 0), 0); /* the keeper lives on */

    /* The next client gets what the program did not take. */
    CHECK_EQ(pp_connect(address("add.socket"), &ch), 0);
    for (k = 1; k < RESULTS; k++) {
        n = -1;
        CHECK_EQ(pp_receive_timeout(ch, &n, sizeof n, &len, 20000), 0);
        CHECK_EQ(n, k);
    }
    CHECK_EQ(pp_receive_timeout(ch, &n, sizeof n, &len, 20000), PP_ECLOSED);
    pp_channel_close(ch);
    CHECK_OK(pp_waitall()); /* the keeper, this process's child, is collected */
    CHECK_EQ(access(address("add.socket"), F_OK), -1);
}

static void test_an_exchange_creates_persistent_processes(void)
{
    pp_exchange *queue;
    pp_channel *child = NULL;
    int32_t n, k, sum = 0, count = 0;
    size_t len;
    int pid;

    CHECK_EQ(pp_queue_new(1, 0, &queue), 0);
    for (k = 0; k < 2; k++) {
        pid = pp_exchange_create_persistent(queue, address(k ? "c1.socket" : "c0.socket"), &child);
        CHECK_OK(pid);
        if (pid == 0) {
            for (n = 0; n < 10; n++)
                if (pp_send(child, &n, sizeof n) < 0)
                    pp_exit(child, 1);
            pp_exit(child, 0);
        }
    }
    while (pp_exchange_next(queue, &n, sizeof n, &len) >= 0) {
        sum += n;
        count++;
    }
    CHECK_EQ(count, 20);
    CHECK_EQ(sum, 2 * 45);
    CHECK_EQ(pp_exchange_finish(queue), 0);
    pp_exchange_free(queue);
    CHECK_OK(pp_waitall()); /* the keepers, this process's children */
    CHECK_EQ(access(address("c0.socket"), F_OK), -1);
    CHECK_EQ(access(address("c1.socket"), F_OK), -1);
}

static void test_start_persistent_on_an_exchange_waits_for_its_limit(void)
{
    pp_exchange *queue;
    int32_t first = 0, k;

    start_numbers(address("l0.socket"), 0);
    CHECK_EQ(pp_queue_new(1, 0, &queue), 0);
    CHECK_OK(pp_exchange_connect(queue, address("l0.socket")));
    CHECK_EQ(pp_exchange_active(queue), 1);
    CHECK(pp_exchange_start_persistent(queue, address("l1.socket"), numbers, &first,
                                       sizeof first) > 0);
    CHECK_EQ(pp_exchange_active(queue), 0); /* it waited for the connection to end */
    for (k = 0; k < RESULTS; k++)
        CHECK_EQ(next_number(queue), k);
    pp_exchange_free(queue);
    collect_numbers(address("l1.socket"));
    wait_gone(address("l1.socket"));
}

static int closes_streams(pp_channel *ch)
{
    char link[32], target[64];
    int fd, same = 0;
    ssize_t n;

    (void)ch;
    if (pp_close_streams() != 0)
        return 1;
    printf("this goes nowhere\n");
    for (fd = 0; fd < 3; fd++) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = '\0';
        same += strcmp(target, "/dev/null") == 0;
    }
    return same == 3 ? 0 : 2;
}

static void test_close_streams(void)
{
    pp_channel *child = create_child(closes_streams);

    if (child == NULL)
        return;
    CHECK_EQ(wait_exit_code(child), 0);
    pp_channel_close(child);
}

/* Doubles each number a client sends until it receives a negative one. */
static int doubles(pp_channel *ch, const void *arg, size_t arg_len)
{
    int32_t n;
    size_t len;
    int rc;

    (void)arg;
    (void)arg_len;
    while ((rc = pp_receive(ch, &n, sizeof n, &len)) == 0 && n >= 0) {
        n *= 2;
        if ((rc = pp_send(ch, &n, sizeof n)) < 0)
            return rc;
    }
    return rc;
}

static void test_a_background_callable_receives_what_clients_send(void)
{
    pp_channel *ch;
    int32_t n;
    size_t len;

    CHECK_OK(pp_start_persistent(address("doubles.socket"), doubles, NULL, 0));
    /* A client sends and leaves: its message still reaches the callable. */
    CHECK_EQ(pp_connect(address("doubles.socket"), &ch), 0);
    n = 21;
    CHECK_EQ(pp_send(ch, &n, sizeof n), 0);
    pp_channel_close(ch);
    /* The next client gets the answer, and its acknowledged send returns
     * once the callable has received the message. */
    CHECK_EQ(pp_connect(address("doubles.socket"), &ch), 0);
    CHECK_EQ(pp_receive_timeout(ch, &n, sizeof n, &len, 20000), 0);
    CHECK_EQ(n, 42);
    n = -1;
    CHECK_EQ(pp_send_acked(ch, &n, sizeof n), 0);
    CHECK_EQ(pp_receive_timeout(ch, &n, sizeof n, &len, 20000), PP_ECLOSED);
    pp_channel_close(ch);
    wait_gone(address("doubles.socket"));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/pp-c-persistent-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_killed_queue_client_loses_nothing);
    RUN(test_finish_acknowledges_what_the_queue_holds);
    RUN(test_connect_at_the_limit);
    RUN(test_connect_refuses_a_symlink);
    RUN(test_the_keeper_holds_none_of_its_starters_descriptors);
    RUN(test_a_killed_keeper_is_reported_not_taken_for_the_end);
    RUN(test_a_refused_second_start_does_not_end_the_first);
    RUN(test_an_exchange_never_kills_a_created_keeper);
    RUN(test_an_exchange_creates_persistent_processes);
    RUN(test_start_persistent_on_an_exchange_waits_for_its_limit);
    RUN(test_close_streams);
    RUN(test_a_background_callable_receives_what_clients_send);
    rmdir(dir); /* fails, and says so below, if a socket file is left */
    CHECK_EQ(access(dir, F_OK), -1);
    return report();
}
