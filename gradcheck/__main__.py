"""`python -m gradcheck`."""

from .cli import entry

entry()
