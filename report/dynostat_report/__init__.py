"""dynostat-report: turns Heroku logs into a picture of what happened to each dyno.

Runs on a laptop after an incident, never on a dyno: the agent never imports it and it is
not in the slug.
"""

__version__ = "0.1.0"
