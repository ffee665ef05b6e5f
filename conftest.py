"""The slimbench pytest plugin is registered by the package's `pytest11` entry point: installing
slimbench is enough, in this repository and in yours (no `pytest_plugins` line needed). It stays
passive in a session whose tests do not use the `variant` fixture."""
