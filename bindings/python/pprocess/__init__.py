"""pprocess: pprocess 0.5's parallel processing API on Python 3, over the
pprocess C library (bundled in this package).

Processes are created with fork, as pprocess always did: a created process
is a copy of this one and runs Python callables there. Messages are pickled
objects; a created process's exception is raised again in its creator.

>>> import pprocess
>>> def calculate(x):
...     return x * x
>>> list(pprocess.pmap(calculate, range(5), limit=2))
[0, 1, 4, 9, 16]
"""

from ._capi import strerror, version
from ._channel import (
    Channel, close_streams, connect_persistent, create, create_persistent, exit,
    get_number_of_cores, start, start_persistent, waitall,
)
from ._errors import (
    AddressError, Closed, Error, PeerEnded, PermissionRefused, ProtocolError, RemoteError,
    RemoteTraceback, SystemCallError, Timeout, TooBig, UnpicklableError,
)
from ._exchange import (
    BackgroundCallable, BackgroundQueue, Exchange, MakeParallel, MakeReusable, ManagedCallable,
    Map, PersistentCallable, PersistentExchange, PersistentQueue, Queue, pmap,
)
from ._executor import Executor

__version__ = "0.6.0"

__all__ = [
    "AddressError", "BackgroundCallable", "BackgroundQueue", "Channel", "Closed", "Error",
    "Exchange", "Executor", "MakeParallel", "MakeReusable", "ManagedCallable", "Map",
    "PeerEnded", "PermissionRefused", "PersistentCallable", "PersistentExchange",
    "PersistentQueue", "ProtocolError", "Queue", "RemoteError", "RemoteTraceback",
    "SystemCallError", "Timeout", "TooBig", "UnpicklableError", "close_streams",
    "connect_persistent", "create", "create_persistent", "exit", "get_number_of_cores", "pmap",
    "start", "start_persistent", "strerror", "version", "waitall",
]
