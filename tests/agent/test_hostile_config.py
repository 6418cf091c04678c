"""Whatever text is in the config vars, samples keep coming and nothing crashes.

Hypothesis feeds arbitrary Unicode to every ``DYNOSTAT_*`` and ``OTEL_*`` variable the agent's
code names (found by reading the sources, so a new variable is covered the day it is added)
and runs the agent's own ``main`` on a captured dyno tree for two samples. A push URL made of
random text may name a real host, so the search runs in a child process inside its own
network namespace, where only loopback exists and every connection fails at once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from support.paths import AGENT, AGENT_PACKAGE, FIXTURES, TESTS

TREE = FIXTURES / "captured-dyno-like"


def agent_variables() -> list[str]:
    names = set()
    for source in AGENT_PACKAGE.rglob("*.py"):
        names.update(re.findall(r"(?:DYNOSTAT|OTEL)_[A-Z_]+[A-Z]", source.read_text()))
    return sorted(names)


SEARCH = r"""
import re, sys
from hypothesis import HealthCheck, example, given, settings, strategies as st
from support.output import CapturedOutput
from dynostat import cli

VARIABLES = sys.argv[1].split(",")
TREE = sys.argv[2]
SAMPLE = re.compile(r"sample#\S*tasks=|\"sample\":\{")

# Values as they reach a dyno: any Unicode except NUL, which no environment can hold.
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                 max_size=40)
any_value = values | st.sampled_from(["²", "١٢", "1_0", "nan", "inf", "-1", "1e9", " ", "",
                                      "http://127.0.0.1:9/v1", "https://[::1]:0/", "ALL",
                                      "otlp", "grpc", "gzip", "true", "a=b,c"])

@settings(max_examples=int(sys.argv[3]), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.fixed_dictionaries({}, optional={name: any_value for name in VARIABLES}))
@example({"DYNOSTAT_URL": "http://127.0.0.1:9/v1", "DYNOSTAT_PUSH_BUFFER": "²"})
@example({"DYNOSTAT_INTERVAL": "١٢", "DYNOSTAT_TOP": "1_0", "DYNOSTAT_RESTARTS": "²"})
@example({"DYNOSTAT_PUSH_PROTOCOL": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
          "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_RESOURCE_ATTRIBUTES": "a=%zz",
          "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_TIMEOUT": "-1"})
def agent_keeps_sampling(env):
    env = {"DYNO": "web.1", **env}
    out = CapturedOutput()
    try:
        status = cli.main(["--interval", "0.01", "--count", "2", "--proc-root",
                           TREE + "/proc", "--cgroup-root", TREE + "/cgroup"],
                          env=env, stdout_fd=out.fd, execve=lambda *a: None)
        text = out.getvalue().decode("utf-8")
    finally:
        out.close()
    assert status == 0, (env, text)
    assert len(SAMPLE.findall(text)) == 2, (env, text)
    assert "agent_crash" not in text and "tick_failed" not in text, (env, text)
    assert "Traceback" not in text

agent_keeps_sampling()
print("ok")
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare for a network namespace with nothing but loopback",
)
def test_arbitrary_unicode_in_every_config_var_never_stops_the_samples():
    variables = agent_variables()
    assert "DYNOSTAT_PUSH_BUFFER" in variables and "DYNOSTAT_INTERVAL" in variables
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in variables and "OTEL_RESOURCE_ATTRIBUTES" in variables
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", SEARCH, ",".join(variables), str(TREE), "300"],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(AGENT), str(TESTS)]),
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert result.stdout.strip().endswith("ok")
