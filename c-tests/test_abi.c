/*
 * The header's promises: version and error-code macros, pp_strerror, and
 * NULL arguments to every exported function (PP_EINVAL, no crash, outputs
 * untouched; accepted where the header says NULL is fine).
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

/* Every PP_E* code, in header order. */
static const int error_codes[] = {
    PP_ECLOSED, PP_EPEER, PP_EREMOTE, PP_EPROTO, PP_ETOOBIG, PP_ETIMEDOUT,
    PP_EDONE, PP_EBUSY, PP_EADDR, PP_EPERM, PP_EPANIC, PP_EINVAL, PP_ETHREADS,
};
enum { ERROR_CODES = sizeof error_codes / sizeof error_codes[0] };

/* A value no library call returns or writes: outputs must keep it. */
#define UNTOUCHED ((pp_channel *)(uintptr_t)0x5eed)

static void test_version_macros_match_pp_version(void)
{
    char expected[32];

    snprintf(expected, sizeof expected, "%d.%d.%d", PP_VERSION_MAJOR, PP_VERSION_MINOR,
             PP_VERSION_PATCH);
    CHECK(pp_version() != NULL && strcmp(pp_version(), expected) == 0);
}

static void test_error_macros(void)
{
    int x = 1;
    size_t a, b;

    /* Parenthesized values: `x-PP_E...` must be a subtraction (unparenthesized,
     * `x--1000` would not even compile). */
#define SUBTRACTS(code) CHECK_EQ(x-code, 1 - (code))
    SUBTRACTS(PP_ECLOSED);
    SUBTRACTS(PP_EPEER);
    SUBTRACTS(PP_EREMOTE);
    SUBTRACTS(PP_EPROTO);
    SUBTRACTS(PP_ETOOBIG);
    SUBTRACTS(PP_ETIMEDOUT);
    SUBTRACTS(PP_EDONE);
    SUBTRACTS(PP_EBUSY);
    SUBTRACTS(PP_EADDR);
    SUBTRACTS(PP_EPERM);
    SUBTRACTS(PP_EPANIC);
    SUBTRACTS(PP_EINVAL);
    SUBTRACTS(PP_ETHREADS);
#undef SUBTRACTS

    for (a = 0; a < ERROR_CODES; a++) {
        CHECK(error_codes[a] <= -1000);
        for (b = a + 1; b < ERROR_CODES; b++)
            CHECK(error_codes[a] != error_codes[b]);
    }
}

static void test_strerror_never_null(void)
{
    static const int others[] = {0, -1, -2, -22, -133, -134, -999, -1012, -5000, 1, 5,
                                 INT_MIN, INT_MAX};
    const char *unknown = pp_strerror(-5000);
    size_t a, b;

    for (a = 0; a < sizeof others / sizeof others[0]; a++) {
        const char *text = pp_strerror(others[a]);
        CHECK(text != NULL && text[0] != '\0');
    }
    /* Each library code has its own text, not the generic one. */
    CHECK(unknown != NULL);
    for (a = 0; a < ERROR_CODES && unknown != NULL; a++) {
        const char *text = pp_strerror(error_codes[a]);
        CHECK(text != NULL && text[0] != '\0' && strcmp(text, unknown) != 0);
        for (b = 0; b < a && text != NULL; b++)
            CHECK(strcmp(text, pp_strerror(error_codes[b])) != 0);
    }
}

static int exit_status_nine(pp_channel *ch)
{
    (void)ch;
    pp_exit(NULL, 9); /* NULL is fine; the channel closes with the process */
}

/* pp_create and pp_start: bad arguments fail before any process exists. */
static void test_null_arguments_to_process_functions(void)
{
    char arg = 'a';
    pp_channel *out = UNTOUCHED;
    pp_channel *ch;
    pid_t me = getpid();

    CHECK_EQ(pp_create(NULL), PP_EINVAL);
    CHECK_EQ(pp_start(NULL, &arg, 1, &out), PP_EINVAL);
    CHECK_EQ(pp_start(serve_until_closed, NULL, 1, &out), PP_EINVAL);
    CHECK_EQ(pp_start(serve_until_closed, &arg, 1, NULL), PP_EINVAL);
    if (getpid() != me)
        _exit(99); /* a buggy call forked: do not run the rest twice */
    CHECK(out == UNTOUCHED);

    /* A NULL argument of length 0 is no argument. */
    CHECK_OK(pp_start(serve_until_closed, NULL, 0, &out));
    CHECK(out != UNTOUCHED);
    pp_channel_close(out == UNTOUCHED ? NULL : out);

    ch = create_child(exit_status_nine);
    if (ch != NULL)
        CHECK_EQ(wait_exit_code(ch), 9);
    pp_channel_close(ch);
    pp_channel_close(NULL);
    pp_free(NULL);
}

/* Sending and receiving: a NULL handle, a NULL buffer with a length, or a
 * NULL output is PP_EINVAL, and does not block. */
static void test_null_arguments_to_message_functions(pp_channel *ch)
{
    char buf[8] = {0};
    size_t len = 77;
    void *data = UNTOUCHED;

    CHECK_EQ(pp_send(NULL, buf, 1), PP_EINVAL);
    CHECK_EQ(pp_send(ch, NULL, 1), PP_EINVAL);
    CHECK_EQ(pp_send_acked(NULL, buf, 1), PP_EINVAL);
    CHECK_EQ(pp_send_acked(ch, NULL, 1), PP_EINVAL);
    CHECK_EQ(pp_send_error(NULL, 1, "message"), PP_EINVAL);

    CHECK_EQ(pp_receive(NULL, buf, sizeof buf, &len), PP_EINVAL);
    CHECK_EQ(pp_receive(ch, NULL, sizeof buf, &len), PP_EINVAL);
    CHECK_EQ(pp_receive(ch, buf, sizeof buf, NULL), PP_EINVAL);
    CHECK_EQ(pp_receive_timeout(NULL, buf, sizeof buf, &len, 0), PP_EINVAL);
    CHECK_EQ(pp_receive_timeout(ch, NULL, sizeof buf, &len, 0), PP_EINVAL);
    CHECK_EQ(pp_receive_timeout(ch, buf, sizeof buf, NULL, 0), PP_EINVAL);
    CHECK_EQ(pp_receive_alloc(NULL, &data, &len), PP_EINVAL);
    CHECK_EQ(pp_receive_alloc(ch, NULL, &len), PP_EINVAL);
    CHECK_EQ(pp_receive_alloc(ch, &data, NULL), PP_EINVAL);
    CHECK(len == 77 && data == UNTOUCHED);

    /* Where NULL is fine: an empty message, an error frame without text. */
    CHECK_OK(pp_send(ch, NULL, 0));
    CHECK_OK(pp_send_error(ch, 5, NULL));
}

/* The pp_channel_* queries and settings. */
static void test_null_arguments_to_channel_functions(pp_channel *ch)
{
    int code = 77, status = 77;
    const char *message = "untouched";

    CHECK_EQ(pp_channel_remote_error(NULL, &code, &message), PP_EINVAL);
    CHECK(code == 77 && strcmp(message, "untouched") == 0);
    CHECK_EQ(pp_channel_remote_error(ch, NULL, NULL), 0);
    CHECK_EQ(pp_channel_pid(NULL), PP_EINVAL);
    CHECK_EQ(pp_channel_fd(NULL), PP_EINVAL);
    CHECK_EQ(pp_channel_set_max_message(NULL, 16), PP_EINVAL);
    CHECK_EQ(pp_channel_wait(NULL, &status), PP_EINVAL);
    CHECK_EQ(status, 77);
}

static void test_null_arguments(void)
{
    pp_channel *ch = start_child(serve_until_closed);

    test_null_arguments_to_process_functions();
    if (ch == NULL)
        return;
    test_null_arguments_to_message_functions(ch);
    test_null_arguments_to_channel_functions(ch);
    pp_channel_close(ch);
}

static void test_wait_with_null_status(void)
{
    pp_channel *ch = create_child(exit_status_nine);

    if (ch == NULL)
        return;
    CHECK_EQ(pp_channel_wait(ch, NULL), pp_channel_pid(ch));
    pp_channel_close(ch);
}

static void test_process_queries(void)
{
    CHECK(pp_number_of_cores() >= 1);
    CHECK_OK(pp_waitall());
}

int main(void)
{
    RUN(test_version_macros_match_pp_version);
    RUN(test_error_macros);
    RUN(test_strerror_never_null);
    RUN(test_null_arguments);
    RUN(test_wait_with_null_status);
    RUN(test_process_queries);
    return report();
}
