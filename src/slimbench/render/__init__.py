"""Rendering: REPORT.md, summary.json and the plots, from saved results only.

Nothing here measures, builds or imports a model or a runtime: every module reads
`slimbench.analysis.results.Run` objects, so a report can be re-rendered from any saved file. Lowest first:
`rows` (a run's rows and ratios to `standard`), `grouping` (runs by machine, changes against a
baseline), `verdict` (which variant to ship, the Pareto fronts, the noise line), `summary`
(summary.json), `tables` (Markdown tables), `method` (how each figure was measured, in words),
`plots`, `label_groups` (a multi-label run's per-group table), `report` (REPORT.md), `command` (`slimbench report`: writing the files, the command line).
"""
