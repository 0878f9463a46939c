"""Dagster table metadata from rows of text, the one way every shipnav asset shows a table."""

from collections.abc import Mapping, Sequence

import dagster as dg


def table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> dg.MetadataValue:
    """A table of ``columns`` (all text; a missing or empty value is an empty cell)."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({c: str(r.get(c, "") or "") for c in columns}) for r in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in columns]),
    )
