"""Flask CLI: demo data, ledger check, AMI watcher."""
import click
from flask import current_app
from flask.cli import with_appcontext

from app.extensions import db
from tenants.scope import unscoped


def register_cli(app):
    app.cli.add_command(demo_command)
    app.cli.add_command(ledger_group)
    app.cli.add_command(ami_group)
    app.cli.add_command(agi_group)


@click.command("demo")
@click.option("--reset", is_flag=True, help="Drop every table first.")
@with_appcontext
def demo_command(reset):
    """Create the demo platform: admin, resellers, a sub-reseller, staff and accounts."""
    import logging

    from app.cli.demo import DEMO_LOGINS, load_demo

    # The demo's welcome emails are logged in full when no SMTP is set: keep the output short.
    logging.getLogger("app.notifications.outbox").setLevel(logging.WARNING)
    with unscoped():
        if reset:
            db.drop_all()
            db.create_all()
        created = load_demo()
        db.session.commit()
    click.echo("Demo data " + ("loaded." if created else "already present."))
    for portal, email, password in DEMO_LOGINS:
        click.echo(f"  {portal:<28} {email:<28} {password}")


@click.group("ledger")
def ledger_group():
    """Ledger tools."""


@ledger_group.command("check")
@with_appcontext
def ledger_check():
    """Verify balance == sum(ledger) for every account."""
    from app.ledger import balance_mismatches

    with unscoped():
        bad = balance_mismatches()
    for account_id, balance, total in bad:
        click.echo(f"account {account_id}: balance {balance} != ledger {total}")
    click.echo("ledger OK" if not bad else f"{len(bad)} account(s) out of balance")
    raise SystemExit(1 if bad else 0)


@click.group("ami")
def ami_group():
    """Asterisk Manager Interface watcher."""


@ami_group.command("watch")
@with_appcontext
def ami_watch():
    """Follow every enabled Asterisk server (runs until stopped)."""
    try:
        from workers.ami.run import watch_configured_servers
    except ImportError:
        click.echo("No Asterisk servers configured (the AMI watcher is not installed yet).")
        return
    watch_configured_servers(current_app._get_current_object())


@click.group("agi")
def agi_group():
    """FastAGI call control (authorise and route calls before they ring)."""


@agi_group.command("serve")
@with_appcontext
def agi_serve():
    """Answer Asterisk's FastAGI requests on AGI_HOST:AGI_PORT (runs until stopped)."""
    from workers.agi.run import serve

    serve(current_app._get_current_object())
