"""The C library bundled in this package, reached through ctypes.

The package loads the shared object installed next to this file
(``_pprocess_capi*.so``, built by pip from the crate's ``capi`` feature) by
its full path, and binds every function through that handle: it never loads
another ``libpprocess`` and ignores ``LD_LIBRARY_PATH``.

Two views of the same library are used. Calls that may create a process (or
run a task) go through ``ctypes.PyDLL``, which keeps the GIL held across the
call: the C library forks inside them, and a created Python process can only
run Python code if the GIL was held by the forking thread (with the GIL
released, another thread could hold it at the fork, and the child would wait
for it forever). Calls that only wait on a channel go through
``ctypes.CDLL``, which releases the GIL, so other threads run meanwhile.
"""

from __future__ import annotations

import ctypes
import glob
import os
from ctypes import POINTER, c_char_p, c_int, c_size_t, c_uint, c_uint64, c_void_p
from typing import Any

__all__ = ["CALLABLE", "STORE", "PATH", "lib", "forking"]


def _library_path() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "_pprocess_capi*.so")))
    if not found:
        raise ImportError(
            f"pprocess: its C library (_pprocess_capi*.so) is missing from {here}; "
            "install the package with `pip install ./bindings/python`"
        )
    return found[0]


PATH = _library_path()
#: Calls that never fork: the GIL is released while they wait.
lib: Any = ctypes.CDLL(PATH)
#: Calls that may fork: the GIL stays held across them.
forking: Any = ctypes.PyDLL(PATH)

#: int (*pp_callable)(pp_channel *channel, const void *arg, size_t arg_len)
CALLABLE: Any = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)
#: int (*pp_store_fn)(pp_exchange *ex, pp_channel *ch, void *ctx)
STORE: Any = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p)

_int_p = POINTER(c_int)
_size_p = POINTER(c_size_t)
_void_pp = POINTER(c_void_p)
_u64_p = POINTER(c_uint64)
_str_p = POINTER(c_char_p)

_RELEASED = {
    "pp_version": (c_char_p,),
    "pp_strerror": (c_char_p, c_int),
    "pp_send": (c_int, c_void_p, c_char_p, c_size_t),
    "pp_send_acked": (c_int, c_void_p, c_char_p, c_size_t),
    "pp_send_error": (c_int, c_void_p, c_int, c_char_p),
    "pp_receive_timeout": (c_int, c_void_p, c_void_p, c_size_t, _size_p, c_int),
    "pp_receive_alloc": (c_int, c_void_p, _void_pp, _size_p),
    "pp_free": (None, c_void_p),
    "pp_channel_remote_error": (c_int, c_void_p, _int_p, _str_p),
    "pp_channel_pid": (c_int, c_void_p),
    "pp_channel_fd": (c_int, c_void_p),
    "pp_channel_pending": (c_int, c_void_p),
    "pp_channel_set_max_message": (c_int, c_void_p, c_size_t),
    "pp_channel_wait_timeout": (c_int, c_void_p, _int_p, c_int),
    "pp_channel_close": (None, c_void_p),
    "pp_connect": (c_int, c_char_p, _void_pp),
    "pp_waitall": (c_int,),
    "pp_number_of_cores": (c_int,),
}

_FORKING = {
    "pp_create": (c_int, _void_pp),
    "pp_start": (c_int, CALLABLE, c_void_p, c_size_t, _void_pp),
    "pp_exit": (None, c_void_p, c_int),
    "pp_close_streams": (c_int,),
    "pp_exchange_new": (c_int, c_size_t, c_uint, STORE, c_void_p, _void_pp),
    "pp_queue_new": (c_int, c_size_t, c_uint, _void_pp),
    "pp_map_new": (c_int, c_size_t, c_uint, _void_pp),
    "pp_exchange_free": (None, c_void_p),
    "pp_exchange_add": (c_int, c_void_p, c_void_p),
    "pp_exchange_add_wait": (c_int, c_void_p, c_void_p),
    "pp_exchange_active": (c_int, c_void_p),
    "pp_exchange_ready": (c_int, c_void_p, c_int, _void_pp, c_size_t),
    "pp_exchange_channels": (c_int, c_void_p, _void_pp, c_size_t),
    "pp_exchange_removed": (c_int, c_void_p, _int_p, _u64_p, c_size_t),
    "pp_exchange_remove": (c_int, c_void_p, c_void_p),
    "pp_exchange_busy": (c_int, c_void_p),
    "pp_exchange_unfinished": (c_int, c_void_p),
    "pp_exchange_wait": (c_int, c_void_p),
    "pp_exchange_store": (c_int, c_void_p, c_int),
    "pp_exchange_finish": (c_int, c_void_p),
    "pp_exchange_start": (c_int, c_void_p, CALLABLE, c_char_p, c_size_t),
    "pp_exchange_create": (c_int, c_void_p, _void_pp),
    "pp_exchange_next_alloc": (c_int, c_void_p, _void_pp, _size_p),
    "pp_map_get": (c_int, c_void_p, c_size_t, c_void_p, c_size_t, _size_p),
    "pp_exchange_task_error": (c_int, c_void_p, _int_p, _str_p),
    "pp_exchange_task_status": (c_int, c_void_p, _int_p, _int_p),
    "pp_exchange_last_task": (c_int, c_void_p, _u64_p),
    "pp_exchange_next_id": (c_int, c_void_p, _u64_p),
    "pp_create_persistent": (c_int, c_char_p, _void_pp),
    "pp_start_persistent": (c_int, c_char_p, CALLABLE, c_void_p, c_size_t),
    "pp_exchange_connect": (c_int, c_void_p, c_char_p),
    "pp_exchange_start_persistent": (c_int, c_void_p, c_char_p, CALLABLE, c_char_p, c_size_t),
    "pp_exchange_create_persistent": (c_int, c_void_p, c_char_p, _void_pp),
}


def _declare(handle: Any, table: dict[str, tuple[Any, ...]]) -> None:
    for name, (restype, *argtypes) in table.items():
        function = getattr(handle, name)
        function.restype = restype
        function.argtypes = argtypes


_declare(lib, _RELEASED)
_declare(forking, _FORKING)

# Library codes and flags: the values of include/pprocess.h (a test compares
# them with the header).
PP_ECLOSED = -1000
PP_EPEER = -1001
PP_EREMOTE = -1002
PP_EPROTO = -1003
PP_ETOOBIG = -1004
PP_ETIMEDOUT = -1005
PP_EDONE = -1006
PP_EBUSY = -1007
PP_EADDR = -1008
PP_EPERM = -1009
PP_EPANIC = -1010
PP_EINVAL = -1011
PP_ETHREADS = -1012
PP_REUSE = 1
PP_CONTINUOUS = 2
PP_KEEP_REMOVED = 4
PP_CORES = 0
PP_UNLIMITED = c_size_t(-1).value


def version() -> str:
    """The C library's version, e.g. ``"0.1.0"``."""
    return str(lib.pp_version().decode())


def strerror(code: int) -> str:
    """The C library's description of a return code (``PP_E*`` or ``-errno``)."""
    return str(lib.pp_strerror(code).decode("utf-8", "replace"))
