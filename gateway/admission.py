"""Admission and settlement moved to billing.live, the one owner of live money; these
names stay until the request pipeline imports billing.live itself."""

from billing.live import Admitted, RateLimited, admit, settle  # noqa: F401
