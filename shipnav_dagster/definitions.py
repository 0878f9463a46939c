"""The shipnav code location: one explicit Definitions object."""

import dagster as dg

defs = dg.Definitions()
