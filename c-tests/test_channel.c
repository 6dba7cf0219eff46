/*
 * Channels from C: messages of bytes and of fixed-layout structs, acknowledged
 * sends, errors sent by the peer, buffer and size limits, malformed frames
 * and timeouts.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <string.h>

#include "check.h"

/* A fixed-layout message (no padding, same layout on both sides). */
struct point {
    double x, y;
    int32_t tag, spare;
};

enum { PINGS = 100, FRAMES = 100, BIG = 100000 };

/* Fills buf with a pattern that depends on seed. */
static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    size_t k;

    for (k = 0; k < len; k++)
        buf[k] = (unsigned char)(k * 7 + seed);
}

/* A pp_callable: sends every message back; an empty message ends it. */
static int echo(pp_channel *ch, const void *arg, size_t arg_len)
{
    unsigned char buf[256];
    size_t len;
    int rc;

    (void)arg;
    (void)arg_len;
    while ((rc = pp_receive(ch, buf, sizeof buf, &len)) == 0 && len > 0) {
        rc = pp_send(ch, buf, len);
        if (rc < 0)
            break;
    }
    return rc;
}

/* Sends an empty message to stop echo; true if it then exited with 0. */
static int stop_echo(pp_channel *ch)
{
    CHECK_OK(pp_send(ch, NULL, 0));
    return wait_exit_code(ch) == 0;
}

static void test_bytes_ping_pong(void)
{
    unsigned char sent[PINGS], got[256];
    size_t len, n;
    pp_channel *ch = start_child(echo);

    if (ch == NULL)
        return;
    for (n = 1; n <= PINGS; n++) {
        fill(sent, n, (unsigned)n);
        CHECK_OK(pp_send(ch, sent, n));
        CHECK_OK(pp_receive(ch, got, sizeof got, &len));
        CHECK_EQ(len, n);
        CHECK(memcmp(got, sent, n) == 0);
    }
    CHECK(stop_echo(ch));
    pp_channel_close(ch);
}

/* Child: answers each point with a transformed one, until an empty message. */
static int double_points(pp_channel *ch)
{
    struct point p;
    size_t len = 1;

    while (pp_receive(ch, &p, sizeof p, &len) == 0 && len == sizeof p) {
        p.x *= 2;
        p.y += 1;
        p.tag += 1;
        if (pp_send(ch, &p, sizeof p) < 0)
            return 1;
    }
    return len == 0 ? 0 : 2;
}

static void test_struct_ping_pong(void)
{
    struct point p;
    size_t len;
    int32_t n;
    pp_channel *ch = create_child(double_points);

    if (ch == NULL)
        return;
    for (n = 0; n < 10; n++) {
        p.x = 1.5 * n;
        p.y = -n;
        p.tag = n;
        p.spare = 0;
        CHECK_OK(pp_send(ch, &p, sizeof p));
        memset(&p, 0, sizeof p);
        CHECK_OK(pp_receive(ch, &p, sizeof p, &len));
        CHECK_EQ(len, sizeof p);
        CHECK(p.x == 3.0 * n && p.y == 1 - n && p.tag == n + 1);
    }
    CHECK_OK(pp_send(ch, NULL, 0));
    CHECK_EQ(wait_exit_code(ch), 0);
    pp_channel_close(ch);
}

/* Child: sends "early", then an acknowledged "acked" and the result of that
 * send, then expects "ping". */
static int acked_both_ways(pp_channel *ch)
{
    char buf[8];
    size_t len;
    int rc;

    if (pp_send(ch, "early", 5) < 0)
        return 1;
    rc = pp_send_acked(ch, "acked", 5);
    if (pp_send(ch, &rc, sizeof rc) < 0)
        return 2;
    if (pp_receive(ch, buf, sizeof buf, &len) < 0 || len != 4 || memcmp(buf, "ping", 4) != 0)
        return 3;
    return 0;
}

static void test_send_acked(void)
{
    char buf[8];
    size_t len;
    int child_rc = -1;
    pp_channel *ch = create_child(acked_both_ways);

    if (ch == NULL)
        return;
    /* Returns once the child took "ping"; "early" stays queued meanwhile. */
    CHECK_OK(pp_send_acked(ch, "ping", 4));
    CHECK_OK(pp_receive(ch, buf, sizeof buf, &len));
    CHECK(len == 5 && memcmp(buf, "early", 5) == 0);
    CHECK_OK(pp_receive(ch, buf, sizeof buf, &len));
    CHECK(len == 5 && memcmp(buf, "acked", 5) == 0);
    CHECK_OK(pp_receive(ch, &child_rc, sizeof child_rc, &len));
    CHECK_EQ(child_rc, 0);
    CHECK_EQ(wait_exit_code(ch), 0);
    pp_channel_close(ch);
}

static int fail_with_42(pp_channel *ch, const void *arg, size_t arg_len)
{
    (void)ch;
    (void)arg;
    (void)arg_len;
    return 42;
}

static void test_callable_error_is_remote(void)
{
    char buf[8];
    size_t len;
    int code = 0;
    const char *message = NULL;
    pp_channel *ch = start_child(fail_with_42);

    if (ch == NULL)
        return;
    CHECK_EQ(pp_channel_remote_error(ch, &code, &message), 0);
    CHECK_EQ(pp_receive(ch, buf, sizeof buf, &len), PP_EREMOTE);
    CHECK_EQ(pp_channel_remote_error(ch, &code, &message), 1);
    CHECK_EQ(code, 42);
    CHECK(message != NULL && message[0] != '\0');
    CHECK_EQ(wait_exit_code(ch), 1); /* pp_start: status 1 after an error frame */
    pp_channel_close(ch);
}

/* Child: three error frames, then exit 0. */
static int send_errors(pp_channel *ch)
{
    char long_message[300];

    memset(long_message, 'x', sizeof long_message - 1);
    long_message[sizeof long_message - 1] = '\0';
    if (pp_send_error(ch, 7, "bad input") < 0 || pp_send_error(ch, -8, NULL) < 0 ||
        pp_send_error(ch, 9, long_message) < 0)
        return 1;
    return 0;
}

/* Receives the next message expecting an error frame with code and message
 * (or, for a NULL expected message, one of expected_len bytes). */
static void expect_remote(pp_channel *ch, int expected_code, const char *expected_message,
                          size_t expected_len)
{
    char buf[8];
    size_t len;
    int code = 0;
    const char *message = NULL;

    CHECK_EQ(pp_receive(ch, buf, sizeof buf, &len), PP_EREMOTE);
    CHECK_EQ(pp_channel_remote_error(ch, &code, &message), 1);
    CHECK_EQ(code, expected_code);
    CHECK(message != NULL);
    if (message == NULL)
        return;
    CHECK_EQ(strlen(message), expected_len);
    if (expected_message != NULL)
        CHECK(strcmp(message, expected_message) == 0);
}

static void test_send_error(void)
{
    char buf[8];
    size_t len;
    pp_channel *ch = create_child(send_errors);

    if (ch == NULL)
        return;
    expect_remote(ch, 7, "bad input", 9);
    expect_remote(ch, -8, "", 0);
    expect_remote(ch, 9, NULL, 256); /* truncated to 256 bytes */
    CHECK_EQ(pp_receive(ch, buf, sizeof buf, &len), PP_ECLOSED);
    CHECK_EQ(wait_exit_code(ch), 0);
    pp_channel_close(ch);
}

/* Child: sends FRAMES numbered frames and exits at once. */
static int send_frames_and_exit(pp_channel *ch)
{
    int32_t n;

    for (n = 0; n < FRAMES; n++)
        if (pp_send(ch, &n, sizeof n) < 0)
            return 1;
    return 0;
}

static void test_frames_sent_before_exit_arrive(void)
{
    int32_t n, got;
    size_t len;
    pp_channel *ch = create_child(send_frames_and_exit);

    if (ch == NULL)
        return;
    CHECK_EQ(wait_exit_code(ch), 0); /* the child is gone before we read */
    for (n = 0; n < FRAMES; n++) {
        got = -1;
        CHECK_OK(pp_receive(ch, &got, sizeof got, &len));
        CHECK_EQ(got, n);
    }
    CHECK_EQ(pp_receive(ch, &got, sizeof got, &len), PP_ECLOSED);
    pp_channel_close(ch);
}

/* A caller's own poll loop: what the channel already read ahead does not make
 * the descriptor readable, and pp_channel_pending says so. */
static void test_pending_after_read_ahead(void)
{
    int32_t n, got;
    size_t len;
    pp_channel *ch = create_child(send_frames_and_exit);

    if (ch == NULL)
        return;
    CHECK_EQ(pp_channel_pending(ch), 0); /* nothing read yet */
    CHECK_EQ(wait_exit_code(ch), 0);     /* every frame is in the socket */
    CHECK_OK(pp_receive(ch, &got, sizeof got, &len));
    CHECK_EQ(pp_channel_pending(ch), 1); /* the next ones were read ahead */
    for (n = 1; n < FRAMES; n++) {
        got = -1;
        CHECK_OK(pp_receive(ch, &got, sizeof got, &len));
        CHECK_EQ(got, n);
    }
    CHECK_EQ(pp_receive(ch, &got, sizeof got, &len), PP_ECLOSED);
    CHECK_EQ(pp_channel_pending(ch), 1); /* the end is known: no waiting */
    CHECK_EQ(pp_channel_pending(NULL), PP_EINVAL);
    pp_channel_close(ch);
}

/* Child: sends messages of 100 bytes, BIG bytes and no bytes. */
static int send_three_sizes(pp_channel *ch)
{
    static unsigned char buf[BIG];

    fill(buf, 100, 1);
    if (pp_send(ch, buf, 100) < 0)
        return 1;
    fill(buf, BIG, 2);
    if (pp_send(ch, buf, BIG) < 0)
        return 2;
    return pp_send(ch, buf, 0) < 0 ? 3 : 0;
}

static void test_too_small_buffer_then_alloc(void)
{
    unsigned char small[10], fits[128], expected[100];
    size_t len = 0;
    void *data = NULL;
    static unsigned char big[BIG];
    pp_channel *ch = create_child(send_three_sizes);

    if (ch == NULL)
        return;
    CHECK_EQ(pp_receive(ch, small, sizeof small, &len), PP_ETOOBIG);
    CHECK_EQ(len, 100); /* the size needed */
    CHECK_OK(pp_receive(ch, fits, sizeof fits, &len));
    CHECK_EQ(len, 100);
    fill(expected, 100, 1);
    CHECK(memcmp(fits, expected, 100) == 0);

    len = 0;
    CHECK_OK(pp_receive_alloc(ch, &data, &len));
    CHECK_EQ(len, BIG);
    fill(big, BIG, 2);
    CHECK(data != NULL && len == BIG && memcmp(data, big, BIG) == 0);
    pp_free(data);

    data = NULL;
    len = 99;
    CHECK_OK(pp_receive_alloc(ch, &data, &len));
    CHECK_EQ(len, 0);
    pp_free(data);
    CHECK_EQ(wait_exit_code(ch), 0);
    pp_channel_close(ch);
}

static void test_max_message(void)
{
    unsigned char buf[32] = {0};
    size_t len;
    pp_channel *ch = start_child(echo);

    if (ch == NULL)
        return;
    CHECK_EQ(pp_channel_set_max_message(ch, 0), PP_EINVAL);
    CHECK_OK(pp_channel_set_max_message(ch, 16));
    CHECK_EQ(pp_send(ch, buf, 17), PP_ETOOBIG);
    CHECK_OK(pp_send(ch, buf, 16));
    CHECK_OK(pp_receive(ch, buf, sizeof buf, &len));
    CHECK_EQ(len, 16);
    /* On receipt, a frame over the limit is malformed (DESIGN.md, wire format). */
    CHECK_OK(pp_channel_set_max_message(ch, 32));
    CHECK_OK(pp_send(ch, buf, 32));
    CHECK_OK(pp_channel_set_max_message(ch, 16));
    CHECK_EQ(pp_receive(ch, buf, sizeof buf, &len), PP_EPROTO);
    CHECK(stop_echo(ch));
    pp_channel_close(ch);
}

/* Child: writes bytes that are not a frame straight to the socket. */
static int write_garbage(pp_channel *ch)
{
    static const char garbage[] = "this is not a pprocess frame, not at all";

    return write(pp_channel_fd(ch), garbage, sizeof garbage) == (ssize_t)sizeof garbage ? 0 : 1;
}

static void test_garbage_is_a_protocol_error(void)
{
    char buf[64];
    size_t len;
    pp_channel *ch = create_child(write_garbage);

    if (ch == NULL)
        return;
    CHECK_EQ(pp_receive(ch, buf, sizeof buf, &len), PP_EPROTO);
    CHECK_EQ(pp_receive(ch, buf, sizeof buf, &len), PP_EPROTO); /* broken for good */
    CHECK_EQ(wait_exit_code(ch), 0);
    pp_channel_close(ch);
}

static void test_receive_timeout(void)
{
    char buf[8];
    size_t len = 12345;
    pp_channel *ch = start_child(echo);

    if (ch == NULL)
        return;
    CHECK_EQ(pp_receive_timeout(ch, buf, sizeof buf, &len, 0), PP_ETIMEDOUT);
    CHECK_EQ(pp_receive_timeout(ch, buf, sizeof buf, &len, 50), PP_ETIMEDOUT);
    CHECK_EQ(len, 12345); /* outputs are written only on success */
    CHECK_OK(pp_send(ch, "x", 1));
    CHECK_OK(pp_receive_timeout(ch, buf, sizeof buf, &len, 10000));
    CHECK(len == 1 && buf[0] == 'x');
    CHECK(stop_echo(ch));
    pp_channel_close(ch);
}

static void test_wait_timeout(void)
{
    int status = -1;
    pp_channel *ch = start_child(echo);

    if (ch == NULL)
        return;
    CHECK_EQ(pp_channel_wait_timeout(ch, &status, 0), PP_ETIMEDOUT);
    CHECK_EQ(pp_channel_wait_timeout(ch, &status, 20), PP_ETIMEDOUT);
    CHECK_EQ(status, -1); /* outputs are written only on success */
    CHECK_OK(pp_send(ch, NULL, 0)); /* stops echo */
    CHECK_EQ(pp_channel_wait_timeout(ch, &status, 10000), pp_channel_pid(ch));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(pp_channel_wait_timeout(NULL, &status, 0), PP_EINVAL);
    pp_channel_close(ch);
}

int main(void)
{
    RUN(test_bytes_ping_pong);
    RUN(test_struct_ping_pong);
    RUN(test_send_acked);
    RUN(test_callable_error_is_remote);
    RUN(test_send_error);
    RUN(test_frames_sent_before_exit_arrive);
    RUN(test_pending_after_read_ahead);
    RUN(test_too_small_buffer_then_alloc);
    RUN(test_max_message);
    RUN(test_garbage_is_a_protocol_error);
    RUN(test_receive_timeout);
    RUN(test_wait_timeout);
    pp_waitall();
    return report();
}
