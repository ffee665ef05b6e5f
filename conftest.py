"""Registers the slimbench pytest plugin: the zoo's variants become the parametrized `variant`
fixture used by bench/. In your own project, add the same line to your conftest.py (or run
pytest with `-p slimbench.plugin`)."""

pytest_plugins = ["slimbench.plugin"]
