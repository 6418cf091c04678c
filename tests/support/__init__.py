"""What the test suites (and the benchmarks) share, so each thing is done one way:

- paths: where the agent, its entry script, the fixtures and the README are;
- agent: the real agent as a child process (``python -m dynostat``, a built environment);
- processes: stopping a child (SIGTERM, a bounded wait, SIGKILL, always reaped), and the
  command line for the system's Python in fresh namespaces;
- subreaper: this process as the reaper of a launch's orphans, as a dyno's PID 1 is;
- network: a free port on 127.0.0.1 for a test server;
- readme_decoder: the README's own decoder, the one logfmt reader of the tests;
- output, reports: the agent's output and its report lines, captured in this process.
"""
