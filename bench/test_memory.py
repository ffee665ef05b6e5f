"""The memory benchmarks of the suite that ships in the package (`slimbench.suite`)."""

from slimbench.suite.test_memory import *  # noqa: F403
