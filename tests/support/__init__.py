"""What the test suites share: one way to capture the agent's output, run it, stop it."""
