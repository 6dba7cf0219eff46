"""Exceptions: the C library's codes as a ``pprocess.Error`` hierarchy, and a
created process's Python exception carried back to its creator."""

from __future__ import annotations

import os
import pickle
import traceback
from typing import Optional

from . import _capi
from ._capi import strerror

__all__ = [
    "AddressError", "Closed", "Error", "PeerEnded", "PermissionRefused", "ProtocolError",
    "RemoteError", "RemoteTraceback", "SystemCallError", "Timeout", "TooBig",
    "UnpicklableError", "check", "error_for",
]


class Error(Exception):
    """A pprocess call failed. ``code`` is the C library's return code (a
    ``PP_E*`` value or ``-errno``), ``message`` its description."""

    code: int = 0

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        if code is not None:
            self.code = code
        self.message = message or strerror(self.code)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Closed(Error, EOFError):
    """The peer closed the channel: no more messages (``PP_ECLOSED``)."""

    code = _capi.PP_ECLOSED


class Timeout(Error, TimeoutError):
    """The timeout passed first (``PP_ETIMEDOUT``)."""

    code = _capi.PP_ETIMEDOUT


class ProtocolError(Error):
    """A malformed frame arrived; the channel is broken (``PP_EPROTO``)."""

    code = _capi.PP_EPROTO


class TooBig(Error, ValueError):
    """A message is larger than the channel's maximum (``PP_ETOOBIG``)."""

    code = _capi.PP_ETOOBIG


class AddressError(Error, ValueError):
    """A persistent address is unusable: too long, a symbolic link, or an
    existing file that is not a stale socket (``PP_EADDR``)."""

    code = _capi.PP_EADDR


class PermissionRefused(Error, PermissionError):
    """The peer's credentials were refused (``PP_EPERM``)."""

    code = _capi.PP_EPERM


class SystemCallError(Error, OSError):
    """A system call failed: ``errno`` is its error number."""

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        super().__init__(message, code)
        self.errno = -self.code


class PeerEnded(Error, ChildProcessError):
    """The peer process ended (an exit status or a signal) before it
    answered (``PP_EPEER``). ``pid`` and ``status`` (the raw wait status)
    are set when the library knows them; ``signal`` and ``exit_code`` decode
    the status."""

    code = _capi.PP_EPEER

    def __init__(
        self, message: str = "", code: Optional[int] = None,
        pid: Optional[int] = None, status: Optional[int] = None,
    ) -> None:
        self.pid = pid
        self.status = status
        if not message:
            message = strerror(_capi.PP_EPEER)
            if pid is not None:
                message += f": process {pid}"
                if self.signal is not None:
                    message += f" killed by signal {self.signal}"
                elif self.exit_code is not None:
                    message += f" exited with status {self.exit_code}"
        super().__init__(message, code)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.code, self.pid, self.status))

    @property
    def signal(self) -> Optional[int]:
        """The signal that ended the process, or None."""
        if self.status is not None and os.WIFSIGNALED(self.status):
            return os.WTERMSIG(self.status)
        return None

    @property
    def exit_code(self) -> Optional[int]:
        """The process's exit code, or None."""
        if self.status is not None and os.WIFEXITED(self.status):
            return os.WEXITSTATUS(self.status)
        return None


class RemoteError(Error):
    """The other side's C callable reported an error (``PP_EREMOTE``) with
    ``remote_code`` and ``remote_message``. Python callables never produce
    it: their exceptions arrive as themselves."""

    code = _capi.PP_EREMOTE

    def __init__(self, message: str = "", code: Optional[int] = None,
                 remote_code: int = 0, remote_message: str = "") -> None:
        self.remote_code = remote_code
        self.remote_message = remote_message
        super().__init__(message or f"{strerror(_capi.PP_EREMOTE)}: {remote_message} "
                         f"(code {remote_code})", code)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.code, self.remote_code, self.remote_message))


class UnpicklableError(Error):
    """A created process raised an exception that could not be pickled:
    ``type_name`` and ``text`` name it, ``remote_traceback`` is the
    traceback text from that process."""

    code = _capi.PP_EREMOTE

    def __init__(self, type_name: str, text: str, remote_traceback: str = "") -> None:
        self.type_name = type_name
        self.text = text
        self.remote_traceback = remote_traceback
        super().__init__(
            f"the created process raised {type_name}: {text} (an exception that cannot "
            "be pickled, so it arrives as this error)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.type_name, self.text, self.remote_traceback))


class RemoteTraceback(Exception):
    """The traceback text of an exception raised in a created process; it is
    the ``__cause__`` of that exception once re-raised in its creator, so
    both tracebacks are printed."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text


_BY_CODE: dict[int, type[Error]] = {
    cls.code: cls
    for cls in (Closed, Timeout, ProtocolError, TooBig, AddressError, PermissionRefused,
                PeerEnded, RemoteError)
}


def error_for(code: int) -> Error:
    """The exception for a negative return code of the C library."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(code=code)
    if code > -1000:
        return _system_call_error(-code)(code=code)
    return Error(code=code)


_OS_ERRORS: dict[type[OSError], type[SystemCallError]] = {}


def _system_call_error(errno: int) -> type[SystemCallError]:
    """SystemCallError, also the built-in OSError subclass for ``errno``
    (FileNotFoundError for ENOENT, ...)."""
    builtin = type(OSError(errno, ""))
    if builtin is OSError:
        return SystemCallError
    cls = _OS_ERRORS.get(builtin)
    if cls is None:
        cls = type(f"SystemCallError_{builtin.__name__}", (SystemCallError, builtin), {})
        _OS_ERRORS[builtin] = cls
    return cls


def check(rc: int) -> int:
    """Returns ``rc`` when it is not an error, else raises its exception."""
    if rc < 0:
        raise error_for(rc)
    return rc


class Raised:
    """An exception raised by a created process's callable, as it travels:
    the pickled exception (or None if it cannot be pickled), its type name,
    its text and the traceback text."""

    __slots__ = ("payload", "type_name", "text", "traceback")

    def __init__(self, error: BaseException) -> None:
        self.type_name = f"{type(error).__module__}.{type(error).__qualname__}"
        self.text = str(error)
        self.traceback = "".join(traceback.format_exception(type(error), error,
                                                            error.__traceback__))
        payload: Optional[bytes]
        try:
            payload = pickle.dumps(error, pickle.HIGHEST_PROTOCOL)
            pickle.loads(payload)  # one that cannot be rebuilt counts as unpicklable
        except Exception:
            payload = None
        self.payload = payload

    def __getstate__(self) -> tuple[Optional[bytes], str, str, str]:
        return (self.payload, self.type_name, self.text, self.traceback)

    def __setstate__(self, state: tuple[Optional[bytes], str, str, str]) -> None:
        self.payload, self.type_name, self.text, self.traceback = state

    def exception(self) -> BaseException:
        """The exception to raise in the creator, with the created process's
        traceback attached (``__cause__``, ``remote_traceback`` and, on
        Python 3.11+, a note)."""
        error: BaseException
        try:
            error = pickle.loads(self.payload) if self.payload is not None else None  # type: ignore[assignment]
        except Exception:
            error = None  # type: ignore[assignment]
        if error is None:
            return UnpicklableError(self.type_name, self.text, self.traceback)
        error.__cause__ = RemoteTraceback(self.traceback)
        try:
            error.remote_traceback = self.traceback  # type: ignore[attr-defined]
        except AttributeError:
            pass
        add_note = getattr(error, "add_note", None)
        if add_note is not None:
            add_note("Raised in a created process (pprocess); its traceback is the cause above.")
        return error
