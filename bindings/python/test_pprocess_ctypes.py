"""Tests of the ctypes binding; tests/python.rs runs them with PPROCESS_LIB
set to the library that `cargo test` built:

    python3 -m unittest discover -s bindings/python -v
"""

import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pprocess_ctypes as pp  # noqa: E402

HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "include", "pprocess.h")

# A test still running after this long ends the test program (SIGALRM's
# default action), so that nothing hangs.
TIMEOUT_SECONDS = 60


def shout(channel, arg):
    channel.send(arg.upper())


def echo_until_closed(channel, arg):
    while True:
        try:
            message = channel.receive()
        except pp.Closed:
            return
        channel.send(arg + message)


def fail_with_code_seven(channel, arg):
    raise pp.RemoteError(7, "bad input: " + arg.decode())


def raise_value_error(channel, arg):
    raise ValueError("not a number")


def wait_forever(channel, arg):
    channel.receive()


def square(x):
    return str(int(x) ** 2).encode()


def slow_square(x):
    # The first inputs take longest, so they finish last.
    time.sleep((10 - int(x)) * 0.005)
    return square(x)


def square_byte(x):
    return bytes([x[0] * x[0]])


def fail_on_three(x):
    if x == b"3":
        raise pp.RemoteError(33, "three")
    return x


class Case(unittest.TestCase):
    def setUp(self):
        signal.alarm(TIMEOUT_SECONDS)

    def tearDown(self):
        signal.alarm(0)
        pp.waitall()


class ProcessesAndChannels(Case):
    def test_start_runs_a_python_function_in_another_process(self):
        with pp.start(shout, b"hello") as channel:
            self.assertEqual(channel.receive(), b"HELLO")
            self.assertGreater(channel.pid, 0)
            self.assertNotEqual(channel.pid, os.getpid())
            self.assertEqual(os.waitstatus_to_exitcode(channel.wait()), 0)

    def test_send_and_receive_bytes_both_ways(self):
        with pp.start(echo_until_closed, b">") as channel:
            for message in (b"one", b"", b"\x00binary\xff", bytes(100000)):
                channel.send(message)
                self.assertEqual(channel.receive(timeout=30), b">" + message)
            channel.send_acked(b"acked")
            self.assertEqual(channel.receive(), b">acked")

    def test_create_is_fork_style(self):
        pid, channel = pp.create()
        if pid == 0:
            try:
                channel.send(str(os.getpid()).encode())
            finally:
                pp.exit(channel, 5)
        with channel:
            self.assertEqual(channel.receive(), str(pid).encode())
            self.assertEqual(os.waitstatus_to_exitcode(channel.wait()), 5)


class Errors(Case):
    def test_a_remote_error_carries_the_code_and_message_from_the_child(self):
        with pp.start(fail_with_code_seven, b"x") as channel:
            with self.assertRaises(pp.RemoteError) as caught:
                channel.receive()
            error = caught.exception
            self.assertIsInstance(error, pp.Error)
            self.assertEqual(error.code, pp.PP_EREMOTE)
            self.assertEqual(error.message, pp.strerror(pp.PP_EREMOTE))
            self.assertEqual(error.remote_code, 7)
            self.assertEqual(error.remote_message, "bad input: x")
            self.assertIn("bad input: x", str(error))
            self.assertEqual(os.waitstatus_to_exitcode(channel.wait()),
                             pp.EXIT_CALLABLE_ERROR)

    def test_any_other_exception_in_the_child_is_a_remote_panic(self):
        with pp.start(raise_value_error) as channel:
            with self.assertRaises(pp.RemoteError) as caught:
                channel.receive()
            self.assertEqual(caught.exception.remote_code, pp.PP_EPANIC)
            self.assertEqual(caught.exception.remote_message, "ValueError: not a number")

    def test_a_killed_child_is_peer_ended(self):
        with pp.start(wait_forever) as channel:
            os.kill(channel.pid, signal.SIGKILL)
            with self.assertRaises(pp.PeerEnded) as caught:
                channel.receive()
            error = caught.exception
            self.assertEqual(error.code, pp.PP_EPEER)
            self.assertEqual(error.message, pp.strerror(pp.PP_EPEER))
            self.assertEqual(error.pid, channel.pid)
            self.assertEqual(error.signal, signal.SIGKILL)
            self.assertIn("killed by signal 9", str(error))

    def test_library_codes_become_exceptions_with_code_and_message(self):
        with pp.start(wait_forever) as channel:
            with self.assertRaises(pp.Timeout) as caught:
                channel.receive(timeout=0)
            self.assertEqual(caught.exception.code, pp.PP_ETIMEDOUT)
            self.assertIsInstance(caught.exception, TimeoutError)
            channel.send(b"done")
            with self.assertRaises(pp.Closed) as caught:
                channel.receive()
            self.assertEqual(caught.exception.code, pp.PP_ECLOSED)
            self.assertEqual(caught.exception.message, pp.strerror(pp.PP_ECLOSED))
        # A map keeps one result per task: continuous is a bad argument.
        with self.assertRaises(pp.Error) as caught:
            pp.Map(continuous=True)
        self.assertEqual(caught.exception.code, pp.PP_EINVAL)
        self.assertIn(pp.strerror(pp.PP_EINVAL), str(caught.exception))

    def test_a_closed_channel_is_an_error_not_a_crash(self):
        channel = pp.start(shout, b"x")
        channel.close()
        with self.assertRaises(pp.Error) as caught:
            channel.send(b"late")
        self.assertEqual(caught.exception.code, pp.PP_EINVAL)


class QueuesAndPmap(Case):
    def test_pmap_returns_results_in_input_order(self):
        inputs = [str(i).encode() for i in range(10)]
        expected = [str(i * i).encode() for i in range(10)]
        for reuse in (False, True):
            with self.subTest(reuse=reuse):
                self.assertEqual(pp.pmap(slow_square, inputs, limit=4, reuse=reuse), expected)

    def test_pmap_raises_a_failed_task_error(self):
        with self.assertRaises(pp.RemoteError) as caught:
            pp.pmap(fail_on_three, [b"1", b"2", b"3", b"4"], limit=2)
        self.assertEqual((caught.exception.remote_code, caught.exception.remote_message),
                         (33, "three"))

    def test_pmap_records_reports_each_record_at_its_index(self):
        data = b"".join(i.to_bytes(4, "little") for i in range(100))

        def square_record(record):
            x = int.from_bytes(record, "little")
            if x == 13:
                raise pp.RemoteError(42, "thirteen")
            if x == 57:
                os.kill(os.getpid(), signal.SIGKILL)
            return (x * x).to_bytes(8, "little")

        outputs, status = pp.pmap_records(square_record, data, 4, 8, limit=2)
        self.assertEqual(len(outputs), 800)
        for i in range(100):
            expected = {13: 42, 57: pp.PP_EPEER}.get(i, 0)
            self.assertEqual(status[i], expected, f"record {i}")
            if not expected:
                self.assertEqual(int.from_bytes(outputs[8 * i:8 * i + 8], "little"), i * i)
        self.assertEqual(pp.pmap_records(square_record, b"", 4, 8), (b"", []))

    def test_reused_workers_killed_mid_chunk_lose_no_answer(self):
        # A reused worker answers a chunk of quick tasks in one write; one
        # killed before that write loses none of the answers it computed
        # (they are read from memory it shares with this process): only
        # the task it died in fails.
        def square_or_die(arg):
            x = int(arg)
            if x % 37 == 36:
                os.kill(os.getpid(), signal.SIGKILL)
            return str(x * x).encode()

        with pp.Map(limit=2, reuse=True) as results:
            for i in range(300):
                results.call(square_or_die, str(i).encode())
            answers, killed = {}, []
            while True:
                try:
                    value = next(results)
                except StopIteration:
                    break
                except pp.Error as error:  # the iteration goes on
                    self.assertEqual(error.code, pp.PP_EPEER)
                    killed.append(error.task)
                    continue
                answers[results.last_task] = value
        self.assertEqual(killed, [i for i in range(300) if i % 37 == 36])
        self.assertEqual(answers, {i: str(i * i).encode() for i in range(300) if i % 37 != 36})

    def test_a_queue_iterates_over_every_result(self):
        with pp.Queue(limit=3) as queue:
            for i in range(10):
                queue.call(square, str(i).encode())
            results = sorted(int(r) for r in queue)
        self.assertEqual(results, [i * i for i in range(10)])

    def test_a_queue_of_started_callables_and_its_failures(self):
        with pp.Queue(limit=2) as queue:
            queue.start(shout, b"a")
            queue.start(fail_with_code_seven, b"b")
            queue.start(shout, b"c")
            results, failures = [], []
            while True:
                try:
                    results.append(next(queue))
                except StopIteration:
                    break
                except pp.RemoteError as error:  # the iteration goes on
                    failures.append((error.task, error.remote_code, error.remote_message))
        self.assertEqual(sorted(results), [b"A", b"C"])
        self.assertEqual(failures, [(1, 7, "bad input: b")])

    def test_a_reused_continuous_queue(self):
        def count_to(channel, arg):
            for i in range(arg[0]):
                channel.send(bytes([i]))

        with pp.Queue(limit=1, reuse=True, continuous=True) as queue:
            queue.start(count_to, b"\x03")
            queue.start(count_to, b"\x02")
            self.assertEqual(sorted(queue), [b"\x00", b"\x00", b"\x01", b"\x01", b"\x02"])

    def test_a_queue_without_limit_starts_every_never_ending_follower(self):
        def follow(channel, arg):
            channel.send(b"up" + arg)
            while True:  # a follower that never ends by itself
                channel.receive()

        with pp.Queue(limit=None, continuous=True) as queue:
            for i in range(9):
                queue.start(follow, bytes([i]))
            up = sorted(next(queue) for _ in range(9))
        self.assertEqual(up, [b"up" + bytes([i]) for i in range(9)])

    def test_a_map_keeps_its_results_for_indexing_and_slices(self):
        with pp.Map(limit=3) as results:
            for n in range(9):
                results.call(square_byte, bytes([n]))
            self.assertEqual(results[8], bytes([64]))
            self.assertEqual(next(results), bytes([0]))
            self.assertEqual(results[3:6], [bytes([9]), bytes([16]), bytes([25])])
            self.assertEqual(list(results), [bytes([n * n]) for n in range(1, 9)])
            self.assertEqual(results[0], bytes([0]))  # still there after iteration
            self.assertEqual(results[6:9], [bytes([36]), bytes([49]), bytes([64])])
            with self.assertRaises(IndexError):
                results[9]


class Library(Case):
    def test_constants_match_the_header(self):
        with open(HEADER) as header:
            defines = dict(re.findall(r"#define (PP_\w+) \(?(-?\d+)\)?", header.read()))
        names = [name for name in defines if not name.startswith("PP_VERSION_")]
        self.assertGreater(len(names), 10)
        for name in names:
            self.assertEqual(getattr(pp, name), int(defines[name]), name)
        expected = ".".join(defines["PP_VERSION_" + part] for part in ("MAJOR", "MINOR", "PATCH"))
        self.assertEqual(pp.version(), expected)

    def test_strerror_and_number_of_cores(self):
        self.assertTrue(pp.strerror(-123456))
        self.assertNotEqual(pp.strerror(pp.PP_EPEER), pp.strerror(pp.PP_ECLOSED))
        self.assertGreaterEqual(pp.number_of_cores(), 1)


if __name__ == "__main__":
    unittest.main()
