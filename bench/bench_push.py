"""What pushing costs the agent: RSS and CPU per tick with the push sink off and on.

Runs the real agent as dynos run it (``python3 -S agent/dynostat-agent --interval 1``, with
requirements/push.txt installed beside it as the build installs it into the slug) once per
configuration, reads its peak memory (VmHWM) after N ticks and stops it,
in alternating rounds so background load hits all of them alike, and reads the agent's own
``agent_rss`` and ``agent_cpu`` from its lines (the first tick, which carries start-up, is left
out). By default the agent samples a captured dyno tree (tests/fixtures/captured-dyno-like), so
every run scans the same 81 processes and the difference between the rows is the push alone;
``--live`` samples this machine's /proc instead. Then times ``Sink.send`` alone, in process,
against the same endpoints, gives the size of one request body in each encoding, and times
writing one OTLP request with each writer.

Configurations: push off; OTLP protobuf (the default), with gzip, and JSON; OTLP protobuf
written by the protobuf runtime and opentelemetry-proto's classes instead of dynostat's own
writer (bench/otlp_runtime.py; the two pinned packages of tests/requirements.txt installed
beside the slug's), the alternative the default was chosen against; and the Pushgateway.

Endpoints are local: an OTLP receiver (http.server in a child process, answering in the
request's own Content-Type) and, when Debian's prometheus-pushgateway is installed, a real
Pushgateway, both on 127.0.0.1 and both stopped by their pid at the end.

    python3 bench/bench_push.py [--rounds 3] [--count 8] [--sends 300] [--encodings 2000]
                                [--live]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the support package

import slug
from support.network import free_port
from support.paths import AGENT as AGENT_DIR
from support.paths import FIXTURES, REPO
from support.processes import stop

BENCH_DIR = REPO / "bench"
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
CAPTURED = FIXTURES / "captured-dyno-like"
PUSH_REQUIREMENTS = REPO / "requirements" / "push.txt"
TEST_REQUIREMENTS = REPO / "tests" / "requirements.txt"
# What the protobuf-runtime alternative needs, at the versions the tests pin.
RUNTIME_PACKAGES = ("opentelemetry-proto", "protobuf")

# The agent with bench/otlp_runtime.py swapped into its OTLP encoder, then started as
# dynostat-agent starts it.
RUNTIME_AGENT = """
import sys
import otlp_runtime
otlp_runtime.install()
from dynostat.cli import main
sys.exit(main())
"""

# A minimal OTLP/HTTP receiver: reads each body, answers 200 with an empty response in the
# request's own Content-Type, as OTLP asks. It stops by itself after --lifetime seconds if
# nobody stops it first.
RECEIVER = r"""
import http.server, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        kind = self.headers.get("Content-Type", "application/json")
        body = b"{}" if kind == "application/json" else b""
        # One write for the whole answer: a separate body write would wait on Nagle and the
        # client's delayed ACK (40 ms), timing the receiver instead of the agent.
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: " + kind.encode() + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body
        )
class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # an agent stopped mid keep-alive resets its connection; nothing to report
server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
server.timeout = 0.2
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    server.handle_request()
"""

_FIELD = re.compile(r"sample#dynostat\.(agent_rss|agent_cpu)=([0-9.]+)")


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


def agent_path(vendor: Path) -> str:
    """The agent package, then the push dependencies: like the slug's .dynostat/agent and
    .dynostat/vendor, importable under -S."""
    return os.pathsep.join([str(AGENT_DIR), str(vendor)])


def install_vendor(folder: Path) -> Path:
    """requirements/push.txt installed as bin/compile installs it into the slug."""
    return _install(folder / "vendor", ["-r", str(PUSH_REQUIREMENTS)])


def install_runtime(folder: Path) -> Path:
    """The protobuf runtime and opentelemetry-proto, at the tests' pinned versions."""
    pins = [
        line.strip()
        for line in TEST_REQUIREMENTS.read_text().splitlines()
        if line.split("==")[0].strip().lower() in RUNTIME_PACKAGES
    ]
    if len(pins) != len(RUNTIME_PACKAGES):
        raise SystemExit(f"bench: {TEST_REQUIREMENTS} does not pin {RUNTIME_PACKAGES}")
    return _install(folder / "runtime", pins)


def _install(target: Path, requirements: list[str]) -> Path:
    if not (target / ".complete").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-compile", "--target", str(target), *requirements],
            check=True,
        )  # fmt: skip
        (target / ".complete").touch()
    return target


def vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise SystemExit("bench: no VmHWM for the agent")


def run_agent(
    env: dict, count: int, live: bool, vendor: Path, runtime: Path | None = None
) -> tuple[list[float], list[float], float]:
    """agent_rss (MB) and agent_cpu (ms) of every tick but the first, and the peak (VmHWM, MB)
    after ``count`` ticks, read from the running agent before it is stopped. With ``runtime``
    (the folder the protobuf runtime is installed in) its OTLP encoder is the runtime's."""
    roots = [] if live else ["--proc-root", str(CAPTURED / "proc")]
    roots += [] if live else ["--cgroup-root", str(CAPTURED / "cgroup")]
    path = agent_path(vendor)
    if runtime is None:
        command = [sys.executable, "-S", str(AGENT_DIR / "dynostat-agent")]
    else:
        command = [sys.executable, "-S", "-c", RUNTIME_AGENT]
        path = os.pathsep.join([path, str(runtime), str(BENCH_DIR)])
    command += ["--interval", "1", *roots]
    environment = slug.deployed_env({**os.environ, "PYTHONPATH": path, "DYNO": "web.1", **env})
    lines = []
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True) as agent:
        try:
            for line in agent.stdout:
                lines.append(line)
                if "agent_cpu=" in line and len(_FIELD.findall("".join(lines))) >= 2 * count:
                    break
            peak = vm_hwm_mb(agent.pid)
        finally:
            stop(agent, timeout=10)
    text = "".join(lines)
    if "at=error" in text:
        raise SystemExit("bench: the agent reported an error:\n" + text)
    rss, cpu = [], []
    for name, value in _FIELD.findall(text):
        (rss if name == "agent_rss" else cpu).append(float(value))
    return rss[1:], cpu[1:], peak


def real_sample():
    from dynostat.sampler import make_sampler

    sample = make_sampler("/proc", "/sys/fs/cgroup", 3).sample(time.time())
    sample.agent_rss, sample.agent_cpu_ms, sample.push_dropped = 8_500_000, 1.25, 0
    sample.agent_cpu_seconds = 4.5
    return sample


def body_sizes(env: dict) -> tuple[int, int]:
    """Bytes of one request body for a real sample of this machine, plain and gzipped."""
    import zlib

    from dynostat import config
    from dynostat.push import make_sink

    settings, _ = config.load(env)
    sink = make_sink(settings.push, settings.dyno, 20, lambda *args, **kwargs: None)
    body = sink.protocol.request(real_sample(), "web.1", "bench", 0).body
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return len(body), len(compressor.compress(body) + compressor.flush())


def time_encodings(runtime: Path, runs: int) -> dict[str, float]:
    """Median microseconds to write one OTLP request for the captured dyno's sample: the
    agent's protobuf writer, its JSON encoder, and the protobuf runtime (patched in last: it
    replaces the writer for the rest of this process)."""
    from dynostat.config import Dyno
    from dynostat.push.sink import OtlpProtocol
    from dynostat.sampler import make_sampler
    from dynostat.selfcost import SelfCost

    roots = (str(CAPTURED / "proc"), str(CAPTURED / "cgroup"))
    sample = make_sampler(*roots, 3).sample(time.time())
    SelfCost().fill(sample)
    sample.push_dropped = 0

    def median_us(encoding: str) -> float:
        protocol = OtlpProtocol("http://x/v1/metrics", Dyno(name="web.1"), "h", time.time(),
                                encoding=encoding)  # fmt: skip
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            protocol.request(sample, "web.1", "bench", 0)
            times.append((time.perf_counter() - started) * 1e6)
        return statistics.median(times)

    medians = {"protobuf (agent)": median_us("protobuf"), "json": median_us("json")}
    sys.path.insert(0, str(runtime))
    sys.path.insert(0, str(BENCH_DIR))
    import otlp_runtime

    otlp_runtime.install()
    medians["protobuf (runtime)"] = median_us("protobuf")
    return medians


def time_sends(env: dict, sends: int) -> tuple[float, float]:
    """Median wall and CPU microseconds of one Sink.send of a real sample, in process."""
    from dynostat import config
    from dynostat.push import make_sink

    sample = real_sample()
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


def measure_agents(configs: dict, args: argparse.Namespace, vendor: Path, runtime: Path) -> tuple:
    """agent_rss, agent_cpu and VmHWM of every configuration, in alternating rounds."""
    # The agent's modules, the slug's and the runtime's compiled as a slug ships them, and
    # each configuration run once so that the standard library it imports is too.
    compiling = slug.deployed_env(dict(os.environ))
    slug.compile_into_cache(sys.executable, compiling, AGENT_DIR, vendor, runtime, BENCH_DIR)
    for env, uses_runtime in configs.values():
        run_agent(env, 2, args.live, vendor, runtime if uses_runtime else None)
    rss: dict[str, list[float]] = {name: [] for name in configs}
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    peak: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, (env, uses_runtime) in configs.items():
            tick_rss, tick_cpu, tick_peak = run_agent(
                env, args.count, args.live, vendor, runtime if uses_runtime else None
            )
            rss[name] += tick_rss
            cpu[name] += tick_cpu
            peak[name].append(tick_peak)
    return rss, cpu, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=8, help="ticks per agent run")
    parser.add_argument("--sends", type=int, default=300, help="in-process sends timed")
    parser.add_argument("--encodings", type=int, default=2000, help="requests written, timed")
    parser.add_argument("--live", action="store_true", help="sample this machine's /proc")
    parser.add_argument(
        "--work",
        default=str(REPO / "bench" / "out" / "push"),
        help="where the slug-like vendor goes",
    )
    args = parser.parse_args()

    # The in-process timings below import the agent from this checkout.
    sys.path.insert(0, str(AGENT_DIR))
    vendor = install_vendor(Path(args.work))
    runtime = install_runtime(Path(args.work))
    lifetime = args.rounds * 6 * (args.count + 10) + 120
    receiver, otlp_url = start_receiver(lifetime)
    gateway = start_pushgateway()
    try:
        otlp = {"DYNOSTAT_URL": otlp_url}
        # name -> (environment, whether the protobuf runtime writes the bodies)
        configs = {
            "push off": ({}, False),
            "otlp protobuf": (otlp, False),
            "otlp protobuf gzip": ({**otlp, "DYNOSTAT_PUSH_COMPRESSION": "gzip"}, False),
            "otlp json": ({**otlp, "DYNOSTAT_PUSH_ENCODING": "json"}, False),
            "otlp runtime": (otlp, True),
        }
        if gateway is not None:
            configs["pushgateway"] = (
                {"DYNOSTAT_URL": gateway[1], "DYNOSTAT_PUSH_PROTOCOL": "pushgateway"},
                False,
            )
        rss, cpu, peak = measure_agents(configs, args, vendor, runtime)

        base_rss = statistics.median(rss["push off"])
        base_cpu = statistics.median(cpu["push off"])
        tree = "this machine's /proc" if args.live else f"the captured tree {CAPTURED.name}"
        print(f"agent on {tree}, {args.rounds} runs x {args.count - 1} ticks each (medians):")
        print(
            f"{'':20}{'agent_rss MB':>14}{'x off':>8}{'VmHWM MB':>10}"
            f"{'agent_cpu ms/tick':>20}{'x off':>8}"
        )
        for name in configs:
            median_rss = statistics.median(rss[name])
            median_cpu = statistics.median(cpu[name])
            print(
                f"{name:20}{median_rss:14.2f}{median_rss / base_rss:8.2f}"
                f"{statistics.median(peak[name]):10.2f}"
                f"{median_cpu:20.2f}{median_cpu / base_cpu:8.2f}"
            )

        print(f"\nSink.send alone, {args.sends} sends of one real sample (medians), and its body:")
        print(f"{'':20}{'wall us':>10}{'cpu us':>10}{'body B':>10}{'gzipped B':>11}")
        for name, (env, uses_runtime) in configs.items():
            if name == "push off" or uses_runtime:
                continue
            wall, cpu_us = time_sends(env, args.sends)
            plain, gzipped = body_sizes(env)
            print(f"{name:20}{wall:10.0f}{cpu_us:10.0f}{plain:10d}{gzipped:11d}")

        print(f"\nWriting one OTLP request for the captured dyno (medians of {args.encodings}):")
        for name, micros in time_encodings(runtime, args.encodings).items():
            print(f"{name:20}{micros:10.1f} us")
    finally:
        stop(receiver)
        if gateway is not None:
            stop(gateway[0])
        slug.remove_cache()


if __name__ == "__main__":
    main()
