"""`python -m pncp_assets.state`: inspect, filter against, or rebuild a day's state (see `cli.state_main`)."""

from pncp_assets.cli import state_main

raise SystemExit(state_main())
