"""The benchmark suite: one test module per metric, each a thin mapping of the measuring session's
observations to pytest-benchmark records (`slimbench.plugin`). It ships in the package, so that
`slimbench run` and the Python API run it from anywhere; a checkout's `bench/` re-exports it for
`pytest bench --benchmark-only`."""
