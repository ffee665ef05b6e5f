"""The accuracy benchmarks of the suite that ships in the package (`slimbench.suite`)."""

from slimbench.suite.test_accuracy import *  # noqa: F403
