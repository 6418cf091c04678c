"""A real sample, and the values the agent's own log line prints for it.

The sample comes from the agent's Sampler and SelfCost, exactly as the loop takes it, so the
numbers pushed are real ones of odd sizes, not round constants a wrong conversion could still
match: of this machine, or of the captured dyno tree, which has every metric (a memory quota,
page counters, zombies, a worker group) but those the capture predates (NOT_CAPTURED). The
line values come from the agent's own Formatter.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from push_expected import AGENT_CPU

from dynostat import config
from dynostat.output import Formatter
from dynostat.push import make_sink
from dynostat.sample import Sample
from dynostat.sampler import make_sampler
from dynostat.selfcost import SelfCost

SOURCE = "web.1"
DYNO = "0c7f1b6e-5d0a-4c31-9a3e-7d2f61e0b9aa"
CAPTURED_DYNO = Path(__file__).resolve().parents[1] / "fixtures" / "captured-dyno-like"
# Where take_sample reads: this machine, or the captured dyno tree.
TREES = {
    "this machine": ("/proc", "/sys/fs/cgroup"),
    "captured dyno": (str(CAPTURED_DYNO / "proc"), str(CAPTURED_DYNO / "cgroup")),
}

_METRIC = re.compile(r"sample#dynostat\.(\w+)=(\S+)")


def _say_nothing(fields, key=None, every=None) -> None:
    """A Report that drops what the sampler says (this machine's pid 1 refuses its
    smaps_rollup even to root, which it says once)."""


def take_sample(push_dropped: int | None = 0, tree: str = "this machine") -> Sample:
    """One sample of ``tree``, with the agent's own cost and drop count as the loop sets."""
    proc_root, cgroup_root = TREES[tree]
    sample = make_sampler(proc_root, cgroup_root, 3, _say_nothing).sample(time.time())
    SelfCost().fill(sample)
    sample.push_dropped = push_dropped
    return sample


WORKERS_FIGURES = ("workers", "worker_pss", "worker_uss", "parent_pss", "fits")
# What the captured dyno tree cannot give: it was captured before the agent read
# smaps_rollup (PSS, USS, so fits) and the memory cgroup's OOM kill counter.
NOT_CAPTURED = {"memory_oom_kills", "worker_pss", "worker_uss", "parent_pss", "fits"}


def line_values(sample: Sample) -> dict[str, str]:
    """``{name: value-with-unit}`` of every metric the agent's logfmt lines print: the sample's
    lines, and the figures of the worker group's workers line (printed when it is due; the
    figures are the sample's all the same)."""
    # Here: push_sample is also imported by agents the tests start, where the agent's own
    # imports are what is being checked.
    from dynostat.alerts import Alerts
    from support import readme_decoder

    formatter = Formatter(SOURCE, DYNO)
    values = {}
    for line in formatter.sample_lines(sample):
        values.update(_METRIC.findall(line))
    for fields in Alerts().workers(sample, now=0.0):
        printed = readme_decoder.fields(formatter.event_line(fields))
        values.update({name: printed[name] for name in WORKERS_FIGURES if name in printed})
    return values


def pushed_values(sample: Sample) -> dict[str, object]:
    """What a push of ``sample`` must carry, by the line's names: every value the line prints,
    except the agent's CPU, which is pushed as the running total the line's figures add up to
    (``AGENT_CPU``) instead of the milliseconds since the previous sample."""
    values: dict[str, object] = line_values(sample)
    del values["agent_cpu"]
    values[AGENT_CPU] = sample.agent_cpu_seconds
    return values


def waiting(sink) -> int:
    """How many samples the sink holds for re-sending: its buffer, read from the outside."""
    return len(sink._pending)


def sink_from_env(env: dict, interval: float, report):
    """The sink the agent would build for this environment: its config read by the agent's
    own config.load (each config error reported), then push.make_sink; None for push off."""
    settings, errors = config.load(env)
    for fields in errors:
        report(fields)
    if settings.push is None:
        return None
    return make_sink(settings.push, settings.dyno, interval, report)
