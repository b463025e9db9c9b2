"""Access control of the web viewer: the access token, and request paths confined to the
cohort's output folders.

* :func:`token_from_request`: the token from the ``Authorization: Bearer`` header, the
  ``X-Vasomics-Token`` header, the ``vasomics_token`` cookie or the ``token`` query
  parameter (a browser opens the printed URL once; the cookie carries it afterwards).
* :func:`resolve_inside`: a relative file path inside a folder, refused (``None``) when it
  is absolute, has ``..``/``.``/empty parts, backslashes, NUL or percent signs (encoded or
  double-encoded input), or resolves (following symlinks) outside the folder.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

TOKEN_COOKIE = "vasomics_token"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def new_token() -> str:
    """A random URL-safe access token (192 bits)."""
    return secrets.token_urlsafe(24)


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison."""
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def token_from_request(headers, cookies, query) -> tuple[str | None, bool]:
    """``(token, from_query)`` as sent by the client (first found of header, cookie,
    query)."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if "x-vasomics-token" in headers:
        return headers["x-vasomics-token"], False
    if TOKEN_COOKIE in cookies:
        return cookies[TOKEN_COOKIE], False
    return query.get("token"), True


def is_safe_id(value: str) -> bool:
    """A scan id usable as a folder name (letters, digits, ``._-``; not starting with a
    dot)."""
    return bool(_SAFE_ID.match(value)) and ".." not in value


def resolve_inside(root: Path, relative: str) -> Path | None:
    """The existing regular file ``root/relative`` if it stays inside ``root`` after
    resolving symlinks, else ``None``."""
    if (not relative or len(relative) > 1024 or any(c in relative for c in "\\\x00%")
            or relative.startswith("/") or re.match(r"^[A-Za-z]:", relative)):
        return None
    if any(part in ("", ".", "..") for part in relative.split("/")):
        return None
    try:
        base = root.resolve(strict=True)
        target = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target
