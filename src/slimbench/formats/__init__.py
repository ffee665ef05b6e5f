"""On-disk artifact formats beneath both the build and the runtime: each module saves and loads one
format and imports nothing from `slimbench.build`."""
