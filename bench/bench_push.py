"""What pushing costs the agent: RSS and CPU per tick with the push sink off and on.

Runs the real agent as dynos run it (``python3 -S agent/dynostat-agent --interval 1``, with
requirements/push.txt installed beside it as the build installs it into the slug) once per
configuration, reads its peak memory (VmHWM) after N ticks and stops it,
in alternating rounds so background load hits all of them alike, and reads the agent's own
``agent_rss`` and ``agent_cpu`` from its lines (the first tick, which carries start-up, is left
out). By default the agent samples a captured dyno tree (tests/fixtures/captured-dyno-like), so
every run scans the same 81 processes and the difference between the rows is the push alone;
``--live`` samples this machine's /proc instead. Then times ``Sink.send`` alone, in process,
against the same endpoints.

Endpoints are local: an OTLP receiver (http.server in a child process) and, when Debian's
prometheus-pushgateway is installed, a real Pushgateway, both on 127.0.0.1 and both stopped by
their pid at the end.

    python3 bench/bench_push.py [--rounds 3] [--count 8] [--sends 300] [--live]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AGENT_DIR = REPO / "agent"
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
CAPTURED = REPO / "tests" / "fixtures" / "captured-dyno-like"
PUSH_REQUIREMENTS = REPO / "requirements" / "push.txt"

# A minimal OTLP/HTTP receiver: reads each body, answers 200 with an empty JSON response. It
# stops by itself after --lifetime seconds if nobody stops it first.
RECEIVER = r"""
import http.server, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        # One write for the whole answer: a separate body write would wait on Nagle and the
        # client's delayed ACK (40 ms), timing the receiver instead of the agent.
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        )
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
server.timeout = 0.2
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    server.handle_request()
"""

_FIELD = re.compile(r"sample#dynostat\.(agent_rss|agent_cpu)=([0-9.]+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str) -> None:
    give_up = time.monotonic() + 15
    while time.monotonic() < give_up:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as error:
            # Any HTTP answer (even 404/501) means the server is up.
            if hasattr(error, "code"):
                return
        time.sleep(0.05)
    raise SystemExit(f"bench: {url} did not come up")


def start_receiver(lifetime: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port), str(lifetime)])
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    return process, url + "/v1/metrics"


def start_pushgateway() -> tuple[subprocess.Popen, str] | None:
    if not os.access(PUSHGATEWAY, os.X_OK):
        return None
    port = free_port()
    process = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/-/ready")
    return process, url


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def agent_path(vendor: Path) -> str:
    """The agent package, then the push dependencies: like the slug's .dynostat/agent and
    .dynostat/vendor, importable under -S."""
    return os.pathsep.join([str(AGENT_DIR), str(vendor)])


def install_vendor(folder: Path) -> Path:
    """requirements/push.txt installed as bin/compile installs it into the slug."""
    vendor = folder / "vendor"
    if not (vendor / ".complete").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-compile", "--target", str(vendor), "-r", str(PUSH_REQUIREMENTS)],
            check=True,
        )  # fmt: skip
        (vendor / ".complete").touch()
    return vendor


def vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise SystemExit("bench: no VmHWM for the agent")


def run_agent(
    env: dict, count: int, live: bool, vendor: Path
) -> tuple[list[float], list[float], float]:
    """agent_rss (MB) and agent_cpu (ms) of every tick but the first, and the peak (VmHWM, MB)
    after ``count`` ticks, read from the running agent before it is stopped."""
    roots = [] if live else ["--proc-root", str(CAPTURED / "proc")]
    roots += [] if live else ["--cgroup-root", str(CAPTURED / "cgroup")]
    command = [sys.executable, "-S", str(AGENT_DIR / "dynostat-agent"), "--interval", "1", *roots]
    environment = {**os.environ, "PYTHONPATH": agent_path(vendor), "DYNO": "web.1", **env}
    lines = []
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True) as agent:
        try:
            for line in agent.stdout:
                lines.append(line)
                if "agent_cpu=" in line and len(_FIELD.findall("".join(lines))) >= 2 * count:
                    break
            peak = vm_hwm_mb(agent.pid)
        finally:
            agent.terminate()
            agent.wait(timeout=10)
    text = "".join(lines)
    if "at=error" in text:
        raise SystemExit("bench: the agent reported an error:\n" + text)
    rss, cpu = [], []
    for name, value in _FIELD.findall(text):
        (rss if name == "agent_rss" else cpu).append(float(value))
    return rss[1:], cpu[1:], peak


def time_sends(env: dict, sends: int) -> tuple[float, float]:
    """Median wall and CPU microseconds of one Sink.send of a real sample, in process."""
    sys.path.insert(0, str(AGENT_DIR))
    from dynostat import config
    from dynostat.push import make_sink
    from dynostat.sampler import make_sampler

    sample = make_sampler("/proc", "/sys/fs/cgroup", 3, lambda fields: None).sample(time.time())
    sample.agent_rss, sample.agent_cpu_ms, sample.push_dropped = 8_500_000, 1.25, 0
    reports: list = []
    settings, _ = config.load(env)

    def report(fields, key=None, every=None):
        reports.append(fields)

    sink = make_sink(settings.push, settings.dyno, 20, report)
    walls, cpus = [], []
    for _ in range(sends):
        wall, cpu = time.perf_counter(), time.process_time()
        sink.send(sample, "web.1", "bench")
        cpus.append((time.process_time() - cpu) * 1e6)
        walls.append((time.perf_counter() - wall) * 1e6)
    if sink.dropped or any("push_failed" in str(line) for line in reports):
        raise SystemExit("bench: sends failed against a local endpoint")
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=8, help="ticks per agent run")
    parser.add_argument("--sends", type=int, default=300, help="in-process sends timed")
    parser.add_argument("--live", action="store_true", help="sample this machine's /proc")
    parser.add_argument(
        "--work",
        default=str(REPO / "bench" / "out" / "push"),
        help="where the slug-like vendor goes",
    )
    args = parser.parse_args()

    vendor = install_vendor(Path(args.work))
    lifetime = args.rounds * 3 * (args.count + 10) + 120
    receiver, otlp_url = start_receiver(lifetime)
    gateway = start_pushgateway()
    try:
        configs = {"push off": {}, "otlp": {"DYNOSTAT_URL": otlp_url}}
        if gateway is not None:
            configs["pushgateway"] = {
                "DYNOSTAT_URL": gateway[1],
                "DYNOSTAT_PUSH_PROTOCOL": "pushgateway",
            }
        rss: dict[str, list[float]] = {name: [] for name in configs}
        cpu: dict[str, list[float]] = {name: [] for name in configs}
        peak: dict[str, list[float]] = {name: [] for name in configs}
        for _ in range(args.rounds):
            for name, env in configs.items():
                tick_rss, tick_cpu, tick_peak = run_agent(env, args.count, args.live, vendor)
                rss[name] += tick_rss
                cpu[name] += tick_cpu
                peak[name].append(tick_peak)

        base_rss = statistics.median(rss["push off"])
        base_cpu = statistics.median(cpu["push off"])
        tree = "this machine's /proc" if args.live else f"the captured tree {CAPTURED.name}"
        print(f"agent on {tree}, {args.rounds} runs x {args.count - 1} ticks each (medians):")
        print(
            f"{'':14}{'agent_rss MB':>14}{'x off':>8}{'VmHWM MB':>10}"
            f"{'agent_cpu ms/tick':>20}{'x off':>8}"
        )
        for name in configs:
            median_rss = statistics.median(rss[name])
            median_cpu = statistics.median(cpu[name])
            print(
                f"{name:14}{median_rss:14.2f}{median_rss / base_rss:8.2f}"
                f"{statistics.median(peak[name]):10.2f}"
                f"{median_cpu:20.2f}{median_cpu / base_cpu:8.2f}"
            )

        print(f"\nSink.send alone, {args.sends} sends of one real sample (medians):")
        print(f"{'':14}{'wall us':>10}{'cpu us':>10}")
        for name, env in configs.items():
            if name == "push off":
                continue
            wall, cpu_us = time_sends(env, args.sends)
            print(f"{name:14}{wall:10.0f}{cpu_us:10.0f}")
    finally:
        stop(receiver)
        if gateway is not None:
            stop(gateway[0])


if __name__ == "__main__":
    main()
