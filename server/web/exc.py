"""Exceptions of the store page (storeedge.server.web)."""
from storeedge.exc import EX_DATAERR, EX_NOPERM
from storeedge.server.exc import StoreServerError


class WebError(StoreServerError):
    """Base class of store-page errors."""


class FormError(WebError, ValueError, exit_code=EX_DATAERR):
    """A form field is missing, too long or not allowed; the message names the field."""


class AuthError(WebError, PermissionError, exit_code=EX_NOPERM):
    """Wrong name/password, locked account, expired session or missing permission."""


class LockedOut(AuthError):
    """Too many failed logins: the account is locked for a while."""


class CommandError(WebError, RuntimeError):
    """A command could not be signed or sent to a device."""


class WriteConflict(WebError):
    """Another writer changed the row first; nothing of this write was stored."""
