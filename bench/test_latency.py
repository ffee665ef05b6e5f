"""The latency benchmarks of the suite that ships in the package (`slimbench.suite`)."""

from slimbench.suite.test_latency import *  # noqa: F403
