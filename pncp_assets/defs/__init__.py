"""The Dagster wiring, apart from the code it wires (as Dagster's own platform keeps `defs/`): the assets of
each layer and their checks, the schedules, the freshness checks and alert sensors, the partitions, the
resources (the one schema of the settings) and the environment that fills them, and the Bronze IO manager.
`pncp_assets.definitions:defs` assembles them into the code location. Imports point one way: this package
-> the domain (`commit`, `layers`, `sweeps`, `state`, `pncp`, ...) -> storage."""
