"""What can go wrong in the client, and the exit code each failure maps to.

Scripts branch on the exit code, so it is a contract: 0 the work was done, 1 the server looked at
the data and refused it (retrying the same file fails the same way), 2 no verdict was reached
(usage, configuration, authentication, network or a server fault).
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_ERROR = 2


class CliError(Exception):
    """A failure reported as one line on stderr; ``exit_code`` is the process's exit status."""

    def __init__(self, message: str, *, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiError(CliError):
    """The server answered with an error (the JSON error shape, or something it could not parse)."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None, body: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.details = details or {}
        self.body = body  # the raw JSON answer, for --json

    @property
    def is_auth(self) -> bool:
        return self.status in (401, 403)

    @property
    def is_server_fault(self) -> bool:
        return self.status >= 500 or self.status in (408, 409, 429)
