"""Warnings: the right event at the right threshold, named culprits, once a minute, bounded."""

from __future__ import annotations

from dynostat.alerts import Alerts, RiseTracker, go_duration
from dynostat.output import Formatter
from dynostat.sample import Culprit, Memory, Sample, Tasks, Workers

MB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tasks_sample(tasks, limit, zombie_parents=(), top_threads=()):
    return Sample(
        wall_time=0.0,
        tasks=Tasks(tasks=tasks, processes=tasks, threads=tasks, zombies=0, limit=limit),
        zombie_parents=list(zombie_parents),
        top_threads=list(top_threads),
    )


def lines(warnings):
    formatter = Formatter("web.1", "d")
    return [formatter.event_line(w) for w in warnings]


# -- tasks near the limit ---------------------------------------------------------------------


def test_tasks_at_the_threshold_warn_and_name_the_process_with_most_threads():
    alerts = Alerts(warn_tasks_pct=80, clock=Clock())
    sample = tasks_sample(205, 256, top_threads=[Culprit(1234, "ruby", 40)])
    assert lines(alerts.check(sample)) == [
        "source=web.1 dyno=d at=warn event=tasks_near_limit tasks=205 tasks_limit=256 pct=80"
        " pid=1234 comm=ruby threads=40"
    ]


def test_tasks_below_the_threshold_or_without_a_known_limit_do_not_warn():
    alerts = Alerts(warn_tasks_pct=80, clock=Clock())
    culprit = [Culprit(1, "ruby", 40)]
    assert alerts.check(tasks_sample(204, 256, top_threads=culprit)) == []
    assert alerts.check(tasks_sample(9999, None, top_threads=culprit)) == []


def test_when_zombies_hold_more_tasks_their_parent_is_the_culprit():
    alerts = Alerts(warn_tasks_pct=50, clock=Clock())
    sample = tasks_sample(
        230,
        256,
        zombie_parents=[Culprit(77, "worker", 150)],
        top_threads=[Culprit(12, "puma", 30)],
    )
    assert lines(alerts.check(sample)) == [
        "source=web.1 dyno=d at=warn event=tasks_near_limit tasks=230 tasks_limit=256 pct=89"
        " pid=77 comm=worker zombies=150"
    ]


def test_a_task_warning_without_any_culprit_still_names_the_numbers():
    alerts = Alerts(warn_tasks_pct=80, clock=Clock())
    assert alerts.check(tasks_sample(250, 256)) == [
        {"at": "warn", "event": "tasks_near_limit", "tasks": 250, "tasks_limit": 256, "pct": 97}
    ]


def test_unknown_tasks_never_warn_and_the_cgroup_s_count_alone_still_does():
    alerts = Alerts(warn_tasks_pct=80, clock=Clock())
    unknown = Tasks(tasks=None, processes=None, threads=None, zombies=None, limit=256)
    assert alerts.check(Sample(wall_time=0.0, tasks=unknown)) == []
    # An empty /proc with a readable pids cgroup: the count is known, the processes are not.
    cgroup_only = Tasks(tasks=250, processes=None, threads=None, zombies=None, limit=256)
    assert [w["tasks"] for w in alerts.check(Sample(wall_time=0.0, tasks=cgroup_only))] == [250]


def test_a_warning_repeats_at_most_once_a_minute_per_event_and_culprit():
    clock = Clock()
    alerts = Alerts(warn_tasks_pct=80, clock=clock)
    ruby = tasks_sample(250, 256, top_threads=[Culprit(1, "ruby", 40)])
    java = tasks_sample(250, 256, top_threads=[Culprit(2, "java", 90)])
    printed = []
    for second in range(0, 181, 10):
        clock.now = 1000.0 + second
        for warning in alerts.check(ruby) + alerts.check(java):
            printed.append((second, warning["pid"]))
    assert printed == [(0, 1), (0, 2), (60, 1), (60, 2), (120, 1), (120, 2), (180, 1), (180, 2)]


# -- zombies and threads rising ---------------------------------------------------------------


def zombies(count, parent=(500, "gem-worker")):
    return Sample(
        wall_time=0.0, zombie_parents=[Culprit(parent[0], parent[1], count)] if count else []
    )


def test_zombies_rising_three_times_in_a_row_name_the_parent():
    alerts = Alerts(clock=Clock())
    found = [lines(alerts.check(zombies(count))) for count in (2, 3, 5, 9)]
    assert found[:3] == [[], [], []]
    assert found[3] == [
        "source=web.1 dyno=d at=warn event=zombies_rising zombies=9 from=2 rises=3 pid=500"
        " comm=gem-worker"
    ]


def test_a_slow_leak_that_pauses_between_rises_is_still_caught():
    alerts = Alerts(clock=Clock())
    found = [alerts.check(zombies(count)) for count in (1, 1, 2, 2, 2, 3, 3, 4)]
    assert [bool(f) for f in found] == [False] * 7 + [True]
    assert found[-1][0]["from"] == 1 and found[-1][0]["zombies"] == 4


def test_a_parent_that_reaps_at_all_starts_over():
    alerts = Alerts(clock=Clock())
    found = [alerts.check(zombies(count)) for count in (1, 2, 3, 1, 2, 3)]
    assert found == [[]] * 6


def test_a_plateau_after_the_rises_does_not_keep_warning():
    clock = Clock()
    alerts = Alerts(clock=clock)
    found = []
    for count in (1, 2, 3, 4, 4, 4):
        clock.now += 120  # far apart, so only the rule (not the rate limit) can hold it back
        found.append(bool(alerts.check(zombies(count))))
    assert found == [False, False, False, True, False, False]


def test_threads_rising_name_the_process_from_the_ranked_list():
    alerts = Alerts(clock=Clock())

    def with_threads(count):
        return Sample(wall_time=0.0, top_threads=[Culprit(8, "java", count), Culprit(1, "bash", 1)])

    found = [alerts.check(with_threads(count)) for count in (10, 11, 12, 20)]
    assert found[:3] == [[], [], []]
    assert lines(found[3]) == [
        "source=web.1 dyno=d at=warn event=threads_rising threads=20 from=10 rises=3 pid=8"
        " comm=java"
    ]


def test_a_recycled_pid_running_something_else_starts_a_new_streak():
    tracker = RiseTracker()
    assert tracker.update({5: (2, "a")}) == []
    assert tracker.update({5: (3, "a")}) == []
    assert tracker.update({5: (4, "a")}) == []
    assert tracker.update({5: (5, "b")}) == []  # would be the third rise for "a"
    assert tracker.update({5: (6, "b")}) == []


def test_state_follows_only_the_pids_of_the_latest_sample():
    tracker = RiseTracker()
    tracker.update({pid: (2, "x") for pid in range(5000)})
    assert len(tracker._streaks) == 5000
    tracker.update({1: (3, "x")})
    assert len(tracker._streaks) == 1
    alerts = Alerts(clock=Clock())
    for count in range(1, 50):
        alerts.check(zombies(count, parent=(count, f"p{count}")))  # a new parent each tick
    assert len(alerts.zombies._streaks) == 1


# -- memory -----------------------------------------------------------------------------------


def memory_sample(rss, quota, swap=0):
    return Sample(
        wall_time=0.0,
        memory=Memory(rss=rss, cache=0, swap=swap, quota=quota),
        top_rss=[Culprit(321, "node", rss - MB)],
    )


def test_memory_near_the_quota_warns_and_names_the_biggest_process():
    alerts = Alerts(warn_memory_pct=90, clock=Clock())
    assert alerts.check(memory_sample(rss=400 * MB, quota=512 * MB)) == []
    assert lines(alerts.check(memory_sample(rss=470 * MB, quota=512 * MB))) == [
        "source=web.1 dyno=d at=warn event=memory_near_quota memory_total=470.00MB"
        " memory_quota=512.00MB pct=91 pid=321 comm=node rss=469.00MB"
    ]


def test_no_quota_means_no_memory_warning():
    alerts = Alerts(warn_memory_pct=1, clock=Clock())
    assert alerts.check(memory_sample(rss=470 * MB, quota=None)) == []


def test_growing_swap_warns_and_steady_swap_does_not():
    alerts = Alerts(clock=Clock())
    assert alerts.check(memory_sample(100 * MB, 512 * MB, swap=0)) == []
    assert lines(alerts.check(memory_sample(100 * MB, 512 * MB, swap=8 * MB))) == [
        "source=web.1 dyno=d at=warn event=swapping memory_swap=8.00MB from=0.00MB pid=321"
        " comm=node rss=99.00MB"
    ]
    assert alerts.check(memory_sample(100 * MB, 512 * MB, swap=8 * MB)) == []


# -- OOM kills --------------------------------------------------------------------------------


def oom_sample(kills, victim=None):
    return Sample(
        wall_time=0.0,
        memory=Memory(rss=100 * MB, cache=0, swap=0, quota=512 * MB, oom_kills=kills),
        oom_victim=victim,
    )


def test_a_rising_oom_kill_count_warns_and_names_the_victim_with_its_last_rss():
    alerts = Alerts(clock=Clock())
    assert alerts.check(oom_sample(0)) == []
    assert lines(alerts.check(oom_sample(1, Culprit(77, "puma: cluster w", 480 * MB)))) == [
        'source=web.1 dyno=d at=warn event=oom_kill oom_kills=1 pid=77 comm="puma: cluster w"'
        " rss=480.00MB"
    ]
    assert alerts.check(oom_sample(1)) == []  # no new kill


def test_a_kill_with_no_process_gone_warns_without_a_pid():
    alerts = Alerts(clock=Clock())
    alerts.check(oom_sample(2))
    assert lines(alerts.check(oom_sample(3))) == [
        "source=web.1 dyno=d at=warn event=oom_kill oom_kills=3"
    ]


def test_a_count_already_there_at_start_or_unknown_never_warns():
    alerts = Alerts(clock=Clock())
    assert alerts.check(oom_sample(5)) == []
    assert alerts.check(oom_sample(None)) == []
    assert alerts.check(oom_sample(6)) == []  # a rise from an unknown count is no known kill


# -- memory growing ---------------------------------------------------------------------------


def growing(alerts, clock, totals, step=20.0, largest=None):
    """Feed one sample per ``step`` seconds; the warnings of the last one, as lines."""
    found = []
    for index, total in enumerate(totals):
        top = largest(index) if largest else [Culprit(321, "node", total - 50 * MB)]
        sample = Sample(
            wall_time=0.0,
            memory=Memory(rss=total, cache=0, swap=0, quota=512 * MB),
            top_rss=top,
        )
        found = lines(alerts.check(sample))
        clock.now += step
    return found


def test_a_steady_rise_warns_with_its_rate_and_when_it_reaches_the_line():
    clock = Clock()
    alerts = Alerts(warn_memory_pct=90, clock=clock)
    # 1 MB per 20 s sample is 180 MB/h; from 200 MB the line (460.8 MB) is 260.8 MB away.
    totals = [(191 + n) * MB for n in range(10)]
    assert growing(alerts, clock, totals[:9]) == []  # nine samples are not yet a trend
    assert growing(alerts, clock, totals[9:]) == [
        "source=web.1 dyno=d at=warn event=memory_growing rate=180.00MB/h eta=1h27m"
        " memory_total=200.00MB memory_quota=512.00MB pid=321 comm=node rss=150.00MB"
    ]


def test_it_repeats_every_ten_minutes_while_it_holds():
    clock = Clock()
    alerts = Alerts(clock=clock)
    totals = [(100 + n) * MB for n in range(60)]
    warned = [bool(growing(alerts, clock, [total])) for total in totals]
    # Sample 10 warns, then every 30th sample (600 s at 20 s a sample).
    assert [index for index, hit in enumerate(warned) if hit] == [9, 39]


def test_a_saw_a_flat_line_a_fall_or_a_line_far_away_do_not_warn():
    clock = Clock()
    saw = [(200 + (40 if n % 2 else 0) + n // 10) * MB for n in range(40)]
    assert growing(Alerts(clock=clock), clock, saw) == []  # R² far below 0.8
    assert growing(Alerts(clock=clock), clock, [300 * MB] * 20) == []
    falling = [(300 - n) * MB for n in range(20)]
    assert growing(Alerts(clock=clock), clock, falling) == []
    # 1 MB an hour from 100 MB: the line is 360 h away, past the 24 h horizon.
    slow = [100 * MB + n * MB // 180 for n in range(20)]
    assert growing(Alerts(clock=clock), clock, slow) == []
    # Already past the line: memory_near_quota says it, not memory_growing.
    past = [(470 + n) * MB for n in range(20)]
    assert not [line for line in growing(Alerts(clock=clock), clock, past) if "growing" in line]


def test_without_a_quota_or_a_memory_total_there_is_nothing_to_reach():
    clock = Clock()
    alerts = Alerts(clock=clock)
    for n in range(20):
        alerts.check(Sample(wall_time=0.0, memory=Memory(rss=(100 + n) * MB, cache=0, quota=None)))
        alerts.check(Sample(wall_time=0.0, memory=Memory(quota=512 * MB)))
        clock.now += 20
    assert len(alerts.growth) == 20


def test_the_culprit_is_the_process_whose_rss_grew_most_not_the_largest():
    clock = Clock()
    alerts = Alerts(clock=clock)

    def largest(n):
        return [
            Culprit(10, "postgres", 300 * MB),  # the largest, flat
            Culprit(22, "leaky", (20 + 4 * n) * MB),  # joins the top at n = 0, grows fast
            Culprit(30, "puma", (100 + n) * MB),
        ]

    totals = [(300 + 5 * n) * MB for n in range(10)]
    [line] = growing(alerts, clock, totals, largest=largest)
    assert "pid=22 comm=leaky rss=56.00MB" in line


def test_the_window_keeps_ninety_samples_and_forgets_the_oldest():
    clock = Clock()
    alerts = Alerts(clock=clock)
    # A plateau long ago, then a steady rise over the last 90 samples.
    totals = [400 * MB] * 200 + [(100 + n) * MB for n in range(90)]
    assert growing(alerts, clock, totals)
    assert len(alerts.growth) == 90


def test_go_durations_drop_trailing_zero_units_and_round_hours_to_minutes():
    assert [
        go_duration(s) for s in (0, 0.4, 30, 59.6, 60, 2700, 200, 3600, 3629, 3631, 7800, 86399)
    ] == ["0s", "0s", "30s", "1m", "1m", "45m", "3m20s", "1h", "1h", "1h1m", "2h10m", "24h"]


# -- the workers line -------------------------------------------------------------------------


def workers_sample(workers=4, fits=9, pid=10, comm="puma 6.4.2 (tcp"):
    return Sample(
        wall_time=0.0,
        workers=Workers(
            pid=pid,
            comm=comm,
            workers=workers,
            worker_pss=int(47.4 * MB),
            worker_uss=int(30.2 * MB),
            parent_pss=int(52.1 * MB),
            fits=fits,
        ),
    )


def test_the_workers_line_prints_the_group_its_costs_and_how_many_fit():
    assert lines(Alerts(clock=Clock()).check(workers_sample())) == [
        'source=web.1 dyno=d at=info event=workers pid=10 comm="puma 6.4.2 (tcp" workers=4'
        " worker_pss=47.40MB worker_uss=30.20MB parent_pss=52.10MB fits=9"
    ]


def test_figures_that_could_not_be_read_are_left_out_of_the_workers_line():
    sample = Sample(wall_time=0.0, workers=Workers(pid=10, comm="gunicorn", workers=3))
    assert lines(Alerts(clock=Clock()).check(sample)) == [
        "source=web.1 dyno=d at=info event=workers pid=10 comm=gunicorn workers=3"
    ]


def test_the_workers_line_comes_when_seen_on_change_at_most_once_a_minute_and_every_ten():
    clock = Clock()
    alerts = Alerts(clock=clock)
    printed = []
    # (seconds from start, workers, fits)
    timeline = [(0, 4, 9), (20, 4, 9), (40, 5, 8), (60, 5, 8), (80, 6, 7), (120, 6, 7)]
    timeline += [(140, 6, 7), (700, 6, 7), (1180, 6, 7), (1300, 6, 7)]
    for at, workers, fits in timeline:
        clock.now = 1000.0 + at
        if alerts.check(workers_sample(workers, fits)):
            printed.append((at, workers, fits))
    assert printed == [
        (0, 4, 9),  # first seen
        (60, 5, 8),  # changed at 40 s, held back to a minute after the last line
        (120, 6, 7),  # changed at 80 s, a minute after 60 s
        (700, 6, 7),  # unchanged: ten minutes after the last line
        (1300, 6, 7),
    ]


def test_another_group_is_a_group_first_seen():
    clock = Clock()
    alerts = Alerts(clock=clock)
    assert alerts.check(workers_sample(pid=10))
    clock.now += 20
    assert alerts.check(workers_sample(pid=77, comm="gunicorn"))
    clock.now += 20
    assert not alerts.check(workers_sample(pid=77, comm="gunicorn"))
    clock.now += 20
    assert not alerts.check(workers_sample(pid=10))  # printed a minute ago: not new any more
