"""dynostat: a dyno's memory, load, tasks and zombies, sampled on one fixed-interval loop."""

__version__ = "0.1.0"
