"""The load benchmarks of the suite that ships in the package (`slimbench.suite`)."""

from slimbench.suite.test_load import *  # noqa: F403
