/*
 * A tiny harness for the C tests of the ABI.
 *
 *   RUN(test_fn);          runs a test (a void function), naming it in
 *                          failures; a test still running after
 *                          TEST_TIMEOUT_SECONDS kills the program (SIGALRM)
 *   CHECK(condition);      counts a pass or reports a failure on stderr
 *   CHECK_EQ(actual, expected);   integers; a failure shows both values and,
 *                          for negative ones, pp_strerror's text
 *   CHECK_OK(rc);          rc is not an error (>= 0)
 *   return report();       prints "N passed, N failed"; main's exit status
 *
 * Also the child behaviour several test programs share, and what they look
 * up in /proc (children of a process, open descriptors). Failures inside a
 * created process are not counted here: a child reports them through its
 * exit status or its messages, and the parent checks those.
 *
 * The including file defines _POSIX_C_SOURCE before any #include.
 */
#ifndef CHECK_H
#define CHECK_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pprocess.h"

#ifndef TEST_TIMEOUT_SECONDS /* -DTEST_TIMEOUT_SECONDS=... for slow runs (valgrind) */
#define TEST_TIMEOUT_SECONDS 60
#endif

static int checks_passed, checks_failed;
static const char *current_test = "(none)";

#define RUN(test) (current_test = #test, alarm(TEST_TIMEOUT_SECONDS), test())

#define CHECK(condition) check_true((condition) != 0, #condition, __FILE__, __LINE__)

#define CHECK_EQ(actual, expected) \
    check_equal((long long)(actual), (long long)(expected), #actual, #expected, __FILE__, __LINE__)

/* A return value that must not be an error (0, a count or a pid). */
#define CHECK_OK(rc) check_ok((long long)(rc), #rc, __FILE__, __LINE__)

/* Counts a failure and says where it happened. */
static inline void check_failed(const char *file, int line)
{
    checks_failed++;
    fprintf(stderr, "%s:%d: %s: ", file, line, current_test);
}

/* Prints an integer, with pp_strerror's text if it may be an error code. */
static inline void print_value(long long value)
{
    fprintf(stderr, "%lld", value);
    if (value < 0 && value >= INT_MIN)
        fprintf(stderr, " (%s)", pp_strerror((int)value));
}

static inline void check_equal(long long actual, long long expected, const char *actual_text,
                               const char *expected_text, const char *file, int line)
{
    if (actual == expected) {
        checks_passed++;
        return;
    }
    check_failed(file, line);
    fprintf(stderr, "CHECK_EQ(%s, %s) failed: got ", actual_text, expected_text);
    print_value(actual);
    fprintf(stderr, ", expected ");
    print_value(expected);
    fprintf(stderr, "\n");
}

static inline void check_ok(long long rc, const char *text, const char *file, int line)
{
    if (rc >= 0) {
        checks_passed++;
        return;
    }
    check_failed(file, line);
    fprintf(stderr, "CHECK_OK(%s) failed: got ", text);
    print_value(rc);
    fprintf(stderr, "\n");
}

static inline void check_true(int ok, const char *text, const char *file, int line)
{
    if (ok) {
        checks_passed++;
        return;
    }
    check_failed(file, line);
    fprintf(stderr, "CHECK(%s) failed\n", text);
}

/* Prints the summary; returns main's exit status. */
static inline int report(void)
{
    printf("%d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

/* pp_create for a test. The created process runs child(ch) and exits with
 * its return value; the creator gets the channel (NULL after a failure). */
static inline pp_channel *create_child(int (*child)(pp_channel *ch))
{
    pp_channel *ch = NULL;
    int pid = pp_create(&ch);

    CHECK_OK(pid);
    if (pid == 0)
        pp_exit(ch, child(ch));
    return pid > 0 ? ch : NULL;
}

/* pp_start for a test, with no argument: the channel, or NULL after a failure. */
static inline pp_channel *start_child(pp_callable callable)
{
    pp_channel *ch = NULL;
    int pid = pp_start(callable, NULL, 0, &ch);

    CHECK_OK(pid);
    return pid > 0 ? ch : NULL;
}

/* Waits for the process of ch: its exit code, 128 + the signal that ended
 * it, or -1 if pp_channel_wait failed. */
static inline int wait_exit_code(pp_channel *ch)
{
    int status = 0;
    int rc = pp_channel_wait(ch, &status);

    CHECK_OK(rc);
    if (rc < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A pp_callable that receives (and drops) messages and error frames until
 * the creator closes the channel, then returns 0: a child that stays alive
 * as long as its creator wants. */
static inline int serve_until_closed(pp_channel *ch, const void *arg, size_t arg_len)
{
    char buf[256];
    size_t len;
    int rc;

    (void)arg;
    (void)arg_len;
    while ((rc = pp_receive(ch, buf, sizeof buf, &len)) == 0 || rc == PP_EREMOTE)
        continue;
    return rc == PP_ECLOSED ? 0 : rc;
}

/* The children of a process, as /proc shows them. */
struct children {
    int live;    /* running or sleeping */
    int zombies; /* ended, not yet collected by their parent */
};

/* Reads the state and parent of process `pid` from /proc/<pid>/stat; 1 on
 * success, 0 if it is gone. */
static inline int read_process_stat(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], stat[512];
    const char *after_name;
    int parent, ok = 0;
    FILE *file;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    file = fopen(path, "r");
    if (file == NULL)
        return 0;
    /* "pid (comm) state ppid ...": comm may contain anything but ')'. */
    if (fgets(stat, sizeof stat, file) != NULL && (after_name = strrchr(stat, ')')) != NULL)
        ok = sscanf(after_name + 1, " %c %d", state, &parent) == 2;
    fclose(file);
    if (ok)
        *ppid = (pid_t)parent;
    return ok;
}

/* Counts the children of `parent`. Only numeric /proc entries are processes:
 * "self" and "thread-self" would count the caller a second time. */
static inline struct children children_of(pid_t parent)
{
    struct children found = {0, 0};
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    char state;
    pid_t ppid;

    if (proc == NULL)
        return found;
    while ((entry = readdir(proc)) != NULL) {
        if (strspn(entry->d_name, "0123456789") != strlen(entry->d_name))
            continue;
        if (!read_process_stat((pid_t)atoi(entry->d_name), &state, &ppid) || ppid != parent)
            continue;
        if (state == 'Z')
            found.zombies++;
        else
            found.live++;
    }
    closedir(proc);
    return found;
}

/* How many descriptors this process has open, or -1. */
static inline int open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *entry;
    int count = 0;

    if (dir == NULL)
        return -1;
    while ((entry = readdir(dir)) != NULL)
        count += entry->d_name[0] != '.';
    closedir(dir);
    return count - 1; /* the directory's own descriptor */
}

#endif /* CHECK_H */
