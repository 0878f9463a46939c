"""The ``shipnav`` console script: one module per command, gathered into one click group."""

import warnings
from collections.abc import Sequence
from typing import Any

import click

# The modules, not their commands, are imported by name: ``shipnav_dagster.cli.check`` must stay
# the module (a command object of the same name would shadow it).
from shipnav_dagster.cli import check, demo, dev, ledger, replay, report, sandbox, secrets, webhooks


@click.group(
    "shipnav",
    help="Write ShipStation tracking numbers back to Microsoft Dynamics NAV sales orders.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
def shipnav() -> None:
    pass


# In the order ``shipnav --help`` lists them.
for command in (
    demo.demo,
    dev.dev,
    sandbox.sandbox,
    ledger.ledger,
    replay.replay,
    report.report,
    webhooks.webhooks,
    check.check,
    secrets.secrets,
):
    shipnav.add_command(command)


def parse(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """(command name, its parameters) as the console script would parse ``argv``; for tests."""
    name, *rest = argv
    with shipnav.make_context("shipnav", [name]) as ctx:
        command = shipnav.get_command(ctx, name)
        if command is None:
            raise click.UsageError(f"no such command: {name}")
        return name, command.make_context(name, rest, parent=ctx).params


def quiet_dagster_notices() -> None:
    """Dagster's beta, preview and supersession notices are about Dagster's own interfaces, for
    whoever writes the code, not for the operator at shipnav's terminal. (The classes Dagster
    exports as dagster.BetaWarning etc.; their module is imported instead of dagster, which
    takes a second.)"""
    from dagster_shared.utils.warnings import BetaWarning, PreviewWarning, SupersessionWarning

    for category in (BetaWarning, PreviewWarning, SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its return value is the exit code. A usage error exits 2 with the usage."""
    quiet_dagster_notices()
    try:
        result = shipnav.main(
            args=list(argv) if argv is not None else None, prog_name="shipnav", standalone_mode=False
        )
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        raise SystemExit(2) from None
    except click.UsageError as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    except click.Abort:
        click.echo("shipnav: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0
