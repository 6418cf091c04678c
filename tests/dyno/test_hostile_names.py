"""A process name as hostile as a program can make it, inside the dyno and on the machine.

The agent must name the process whole in lines any logfmt parser reads back, and everything
the tests read from /proc (the harness booting the dyno and listing its processes, the census
taken inside it) must read it as bytes, as the agent does.
"""

from __future__ import annotations

import re

import logfmtkv
from scenario import INTERVAL

from support import readme_decoder


def test_a_hostile_name_is_printed_whole_and_every_reader_of_proc_survives_it(
    boot, process_with_hostile_name
):
    # One such process lives on the machine too: booting the dyno reads the machine's /proc.
    _, comm = process_with_hostile_name
    dyno = boot("hostile", "python3 web.py", config={"HOSTILE_COMM_HEX": comm.hex()})
    started = dyno.wait_for(r"worker\[\d+\]: started pid=\d+", 20)
    worker = int(re.search(r"pid=(\d+)", started.text).group(1))
    name = comm.decode("utf-8", "replace")

    line = dyno.wait_for("top#zombie_parents=", 3 * INTERVAL, after=dyno.lines.index(started))
    line.text.encode("utf-8")  # strict: the line is valid UTF-8
    fields = readme_decoder.fields(line.text)
    assert logfmtkv.parse(line.text, strict=True) == fields
    assert readme_decoder.top(fields["top#zombie_parents"]) == [(worker, name, "2")]
    assert readme_decoder.top(fields["top#threads"]) == [(worker, name, "4")]

    # The harness's own views of the dyno: from the machine's /proc, and from inside it.
    (seen,) = [process for process in dyno.processes() if process.pid == worker]
    assert (seen.comm, seen.threads, seen.state) == (name, 4, "S")
    census = dyno.census()
    assert census["zombies"] == 2
    assert census["processes"] >= 6  # init, the shell or web, the worker, 2 zombies, the agent
