"""Warnings: the right event at the right threshold, named culprits, once a minute, bounded."""

from __future__ import annotations

from dynostat.alerts import Alerts, RiseTracker
from dynostat.output import Formatter
from dynostat.sample import Culprit, Memory, Sample, Tasks

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
