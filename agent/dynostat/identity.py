"""Who is speaking: the ``source=`` and ``dyno=`` that start every line, and the process type.

``source`` is the dyno's name as Heroku shows it, from the ``DYNO`` variable:

- classic (Cedar) dynos: ``<type>.<n>``, e.g. ``web.1``, ``worker.3``, ``run.4821``;
- Fir dynos: ``<type>-<replica set hash>-<pod hash>``, e.g. ``web-12a34b56d-e78f9``, where
  the type may itself contain ``-`` (``my-worker-5d8f9c7b4-x2x9z``).

When ``DYNO`` is unset the agent is being run by hand, outside a dyno; ``source=local`` says
so plainly instead of passing a hostname off as a process name (the hostname is in ``dyno=``).

``dyno`` is ``HEROKU_DYNO_ID`` (set when the labs dyno-metadata feature is on), else the
hostname, which on a dyno identifies the container too. In drop-in log-runtime-metrics mode
(``DYNOSTAT_METRIC_PREFIX`` empty) it is written as log-runtime-metrics writes it,
``heroku.<app id>.<dyno id>``, when dyno metadata gives both ids.
"""

from __future__ import annotations

import os

from dynostat.records import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dynostat.config import Dyno

LOCAL_SOURCE = "local"


class Identity(Frozen):
    """(source, dyno): what starts every line."""

    __slots__ = ("source", "dyno")


def identify(dyno: Dyno, drop_in: bool = False) -> Identity:
    """The source and dyno of this agent's lines; ``drop_in`` for log-runtime-metrics' form."""
    source = dyno.name or LOCAL_SOURCE
    if drop_in and dyno.app_id and dyno.id:
        return Identity(source=source, dyno=f"heroku.{dyno.app_id}.{dyno.id}")
    return Identity(source=source, dyno=dyno.id or os.uname().nodename or "unknown")


def process_type(dyno_name: str) -> str:
    """The process type of a dyno name, for both classic and Fir names.

    ``web.1`` -> ``web``; ``web-12a34b56d-e78f9`` -> ``web``; ``my-worker-5d8f9c7b4-x2x9z`` ->
    ``my-worker``. A Fir name has two generated parts after the type; a name with a single
    ``-`` (a one-off like ``run-4821``) keeps what comes before it; a name with neither form
    is taken whole.
    """
    name = dyno_name.strip()
    head, dot, tail = name.rpartition(".")
    if dot and head and tail.isdigit():
        return head
    parts = name.split("-")
    if len(parts) >= 3 and all(parts[-2:]):
        return "-".join(parts[:-2])
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0]
    return name
