"""The size benchmarks of the suite that ships in the package (`slimbench.suite`)."""

from slimbench.suite.test_size import *  # noqa: F403
