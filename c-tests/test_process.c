/*
 * Processes from C: a child that dies before answering, descriptor hygiene
 * in created processes, C stdio output a child leaves buffered, and
 * pp_waitall leaving no zombies.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "check.h"

enum { CHILDREN = 10 };

/* What /proc/self/fd/<fd> links to, e.g. "socket:[12345]". */
struct fd_link {
    char text[64];
};

static struct fd_link link_of(int fd)
{
    struct fd_link link = {""};
    char path[64];
    ssize_t n;

    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = readlink(path, link.text, sizeof link.text - 1);
    link.text[n > 0 ? n : 0] = '\0';
    return link;
}

/* How many of this process's descriptors link to one of links[0 .. count). */
static int count_fds_linking_to(const struct fd_link *links, size_t count)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *entry;
    int found = 0;
    size_t k;

    if (dir == NULL)
        return -1;
    while ((entry = readdir(dir)) != NULL) {
        struct fd_link link;

        if (entry->d_name[0] == '.')
            continue;
        link = link_of(atoi(entry->d_name));
        for (k = 0; k < count; k++)
            found += strcmp(link.text, links[k].text) == 0;
    }
    closedir(dir);
    return found;
}

/* Child: blocks in a receive that never gets a message. */
static int block_forever(pp_channel *ch)
{
    char buf[8];
    size_t len;

    return pp_receive(ch, buf, sizeof buf, &len) == PP_ECLOSED ? 0 : 1;
}

static void test_killed_child_is_peer_error(void)
{
    char buf[8];
    size_t len;
    int status = 0;
    pp_channel *ch = create_child(block_forever);
    int pid = ch != NULL ? pp_channel_pid(ch) : -1;

    if (ch == NULL)
        return;
    CHECK(pid > 0);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(pp_receive(ch, buf, sizeof buf, &len), PP_EPEER);
    CHECK_EQ(pp_receive(ch, buf, sizeof buf, &len), PP_EPEER); /* and it stays so */
    CHECK_EQ(pp_channel_wait(ch, &status), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    pp_channel_close(ch);
}

static int exit_3(pp_channel *ch)
{
    (void)ch;
    return 3;
}

static int exit_0(pp_channel *ch)
{
    (void)ch;
    return 0;
}

static void test_child_exiting_without_answer(void)
{
    char buf[8];
    size_t len;
    pp_channel *failed = create_child(exit_3);
    pp_channel *done = create_child(exit_0);

    if (failed != NULL) {
        CHECK_EQ(pp_receive(failed, buf, sizeof buf, &len), PP_EPEER);
        CHECK_EQ(wait_exit_code(failed), 3);
    }
    if (done != NULL) {
        CHECK_EQ(pp_receive(done, buf, sizeof buf, &len), PP_ECLOSED);
        CHECK_EQ(wait_exit_code(done), 0);
    }
    pp_channel_close(failed);
    pp_channel_close(done);
}

/* Child: receives the creator's socket links, answers how many it holds. */
static int report_creator_sockets(pp_channel *ch)
{
    struct fd_link links[2];
    size_t len;
    int found;

    if (pp_receive(ch, links, sizeof links, &len) < 0 || len != sizeof links)
        return 1;
    found = count_fds_linking_to(links, 2);
    return pp_send(ch, &found, sizeof found) < 0 ? 2 : 0;
}

static void test_child_holds_no_creator_socket(void)
{
    struct fd_link links[2];
    int found = -1;
    size_t len;
    pp_channel *sibling = start_child(serve_until_closed);
    pp_channel *ch = create_child(report_creator_sockets);

    if (sibling != NULL && ch != NULL) {
        /* The creator's ends of both channels. */
        links[0] = link_of(pp_channel_fd(sibling));
        links[1] = link_of(pp_channel_fd(ch));
        CHECK(strncmp(links[0].text, "socket:[", 8) == 0);
        CHECK(strncmp(links[1].text, "socket:[", 8) == 0);
        CHECK(strcmp(links[0].text, links[1].text) != 0);
        CHECK_OK(pp_send(ch, links, sizeof links));
        CHECK_OK(pp_receive(ch, &found, sizeof found, &len));
        CHECK_EQ(found, 0);
        CHECK_EQ(wait_exit_code(ch), 0);
    }
    pp_channel_close(ch);
    pp_channel_close(sibling);
}

static void test_channel_fd_is_close_on_exec(void)
{
    pp_channel *ch = start_child(serve_until_closed);
    int fd = ch != NULL ? pp_channel_fd(ch) : -1;

    if (ch == NULL)
        return;
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    pp_channel_close(ch);
}

/* Where write_buffered leaves its output, and in which orientation. */
static char buffered_path[64];
static int buffered_wide;

/* Child: leaves output in the buffer of a stream it never closes (a byte
 * stream or a wide one): its exit must flush it. */
static int write_buffered(pp_channel *ch)
{
    FILE *file = fopen(buffered_path, "w");
    int failed;

    (void)ch;
    if (file == NULL)
        return 1;
    if (buffered_wide)
        failed = fwide(file, 1) <= 0 || fputws(L"wide", file) < 0;
    else
        failed = fputs("narrow", file) < 0;
    return failed ? 2 : 0;
}

static int write_buffered_callable(pp_channel *ch, const void *arg, size_t arg_len)
{
    (void)arg;
    (void)arg_len;
    return write_buffered(ch);
}

/* The file's whole content, or "" if it cannot be read. */
static const char *content_of(const char *path, char *buf, size_t size)
{
    FILE *file = fopen(path, "r");
    size_t n = file != NULL ? fread(buf, 1, size - 1, file) : 0;

    if (file != NULL)
        fclose(file);
    buf[n] = '\0';
    return buf;
}

static void test_exit_flushes_what_a_child_left_buffered(void)
{
    int way;

    snprintf(buffered_path, sizeof buffered_path, "/tmp/pp-test-buffered-%d", (int)getpid());
    /* Byte and wide streams; pp_create with pp_exit, and pp_start (whose
     * callable returns). */
    for (way = 0; way < 4; way++) {
        pp_channel *ch;
        char buf[32];

        buffered_wide = way % 2;
        ch = way < 2 ? create_child(write_buffered) : start_child(write_buffered_callable);
        if (ch == NULL)
            continue;
        CHECK_EQ(wait_exit_code(ch), 0);
        content_of(buffered_path, buf, sizeof buf);
        CHECK(strcmp(buf, buffered_wide ? "wide" : "narrow") == 0);
        pp_channel_close(ch);
        remove(buffered_path);
    }
}

static void test_waitall_leaves_no_zombies(void)
{
    pp_channel *channels[CHILDREN];
    struct children left;
    int k, collected;

    CHECK_OK(pp_waitall()); /* the children of earlier tests */
    for (k = 0; k < CHILDREN; k++)
        channels[k] = start_child(serve_until_closed);
    CHECK_EQ(children_of(getpid()).live + children_of(getpid()).zombies, CHILDREN);
    /* Closing ends the children; nobody waits for them yet. A close may
     * already collect the children that have ended by then, so pp_waitall
     * collects the rest: whatever the timing, none is left afterwards. */
    for (k = 0; k < CHILDREN; k++)
        pp_channel_close(channels[k]);
    collected = pp_waitall();
    CHECK(collected >= 0 && collected <= CHILDREN);
    left = children_of(getpid());
    CHECK_EQ(left.live, 0);
    CHECK_EQ(left.zombies, 0);
    CHECK_EQ(pp_waitall(), 0);
}

int main(void)
{
    RUN(test_killed_child_is_peer_error);
    RUN(test_child_exiting_without_answer);
    RUN(test_child_holds_no_creator_socket);
    RUN(test_channel_fd_is_close_on_exec);
    RUN(test_exit_flushes_what_a_child_left_buffered);
    RUN(test_waitall_leaves_no_zombies);
    return report();
}
