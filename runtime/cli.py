"""The `safeguard` command."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import click

from bot.settings import Settings


def export_formats() -> list[str]:
    from bot.timeline.export import FORMATS  # the one list of export formats

    return list(FORMATS)


def _settings(**overrides) -> Settings:
    try:
        return Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})
    except Exception as err:  # pydantic's message names the variable
        raise click.ClickException(f"Bad environment: {err}") from None


def _fail(err: Exception | str) -> click.ClickException:
    return click.ClickException(str(err))


DEBUG_ENV = "SAFEGUARD_DEBUG"


class _OneLineErrors(click.Group):
    """No traceback reaches a person at the terminal: anything unexpected becomes one line (the
    full trace with --debug or SAFEGUARD_DEBUG=1)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as err:
            if os.environ.get(DEBUG_ENV) or (ctx.obj or {}).get("debug"):
                raise
            first = (str(err).strip().splitlines() or [""])[0][:300]
            raise click.ClickException(f"{type(err).__name__}: {first} (run with --debug, or {DEBUG_ENV}=1, "
                                       "for the full trace)") from None


@click.group(cls=_OneLineErrors)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option("--debug", is_flag=True, help="Show the full trace of an unexpected error.")
@click.pass_context
def main(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Safeguard: incident response for child-safety teams, in Slack."""
    ctx.obj = {"debug": debug}
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # their INFO lines are per-job / per-connection noise
        for name in ("apscheduler", "mail.log", "alembic", "waitress.queue"):
            logging.getLogger(name).setLevel(logging.WARNING)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=None, help="Default: $PORT or 3000.")
def serve(host: str, port: int | None) -> None:
    """Run the bot for a real workspace (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)."""
    from runtime.app import StartupError, create_bot
    from runtime.server import BotServer

    settings = _settings(port=port)
    try:
        bot = create_bot(settings)
    except StartupError as err:
        raise _fail(err) from None
    server = BotServer(bot, host=host, port=settings.port)
    signal.signal(signal.SIGTERM, lambda *_: server.stop_soon())  # the loop ends, requests finish
    socket_mode = None
    try:
        if settings.slack_app_token:
            socket_mode = _connect_socket_mode(bot, settings.slack_app_token)
            click.echo("Socket Mode connected; health and timeline pages on " + server.url)
        else:
            click.echo(f"Listening on {server.url}/slack/events")
        server.serve_forever()
    finally:
        if socket_mode is not None:
            socket_mode.close()
        bot.stop()


def _connect_socket_mode(bot, app_token: str):
    """Open the Socket Mode connection (the client reconnects on its own when Slack asks)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    handler = SocketModeHandler(bot.bolt, app_token)
    try:
        handler.connect()
    except SlackApiError as err:
        handler.close()
        raise _fail(f"SLACK_APP_TOKEN: Slack refused apps.connections.open ({err.response.get('error')}); "
                    "it must be an app-level token (xapp-…) with the connections:write scope.") from None
    except OSError as err:
        handler.close()
        raise _fail(f"Socket Mode: could not reach Slack ({err}).") from None
    return handler


@main.command()
@click.option("--port", type=int, default=8787, show_default=True, help="Port of the sandbox page.")
@click.option("--bot-port", type=int, default=3000, show_default=True)
@click.option("--database", default="sqlite:///safeguard-demo.db", show_default=True)
def demo(port: int, bot_port: int, database: str) -> None:
    """Start the sandbox workspace and the bot against it (SQLite), and print the page's URL."""
    from runtime.demo import run_demo

    run_demo(sandbox_port=port, bot_port=bot_port, database_url=database)


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Default: $SAFEGUARD_CONFIG or ./safeguard.yaml.")
@click.option("--playbooks", "playbooks_dir", type=click.Path(path_type=Path), default=None,
              help="Default: $SAFEGUARD_PLAYBOOKS or the shipped playbooks.")
def check(config_path: Path | None, playbooks_dir: Path | None) -> None:
    """Validate the config and every playbook; exit 1 on any error."""
    from bot.check import check as run_check

    settings = _settings()
    config_path = config_path or settings.config_path
    playbooks_dir = playbooks_dir or settings.playbooks_dir
    problems = run_check(config_path, playbooks_dir)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) found.", err=True)
        sys.exit(1)
    click.echo(f"OK: {config_path or 'no config file'} and the playbooks in {playbooks_dir}.")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations ($DATABASE_URL)."""
    from bot.db.engine import Database

    database = Database(_settings().database_url)
    try:
        database.upgrade()
    finally:
        database.dispose()
    click.echo("Database is up to date.")


def _core():
    """The core for a command that reads the database: refused, in one line naming the database,
    when it is missing or was never migrated (and never created by looking)."""
    from runtime.app import StartupError, build_core
    from runtime.dbcheck import NoDatabase, require_database

    settings = _settings()
    try:
        require_database(settings.database_url)
        return build_core(settings, slack=False, migrate=False)
    except (StartupError, NoDatabase) as err:
        raise _fail(err) from None


def _number(incident: str) -> int:
    from bot.incidents import parse_ref

    number = parse_ref(incident)
    if number is None:
        raise click.BadParameter(f"{incident!r} is not an incident (INC-7 or 7).", param_hint="INCIDENT")
    return number


@main.command()
@click.argument("incident")
@click.option("--format", "fmt", type=click.Choice(export_formats()), default="md", show_default=True)
def timeline(incident: str, fmt: str) -> None:
    """Print INCIDENT's timeline / post-incident review."""
    from bot.errors import DomainError
    from bot.timeline import export
    from bot.timeline.build import build_review

    number = _number(incident)  # a usage error before the database is looked at
    core = _core()
    try:
        click.echo(export.render(build_review(core, number), fmt, template_dir=core.settings.templates_dir))
    except DomainError as err:
        raise _fail(err) from None
    finally:
        core.db.dispose()


def _anchors(_ctx, _param, values: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    parsed = []
    for value in values:
        seq, _, digest = value.strip().strip("`").partition(":")
        if not (seq.isascii() and seq.isdigit()) or int(seq) < 1 or len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise click.BadParameter(f"{value!r}: expected SEQ:HASH, an event number and its 64-hex-digit hash "
                                     "(e.g. 42:3f9a…), as the bot posts it")
        parsed.append((int(seq), digest.lower()))
    return tuple(parsed)


@main.command()
@click.argument("incident")
@click.option("--anchor", "anchors", multiple=True, callback=_anchors, metavar="SEQ:HASH",
              help="An event's seq:hash kept outside the database; repeatable.")
def verify(incident: str, anchors: tuple[tuple[int, str], ...]) -> None:
    """Check INCIDENT's hash chain; exit 1 naming the first altered event.

    Each --anchor SEQ:HASH (as the bot posts in the channel on close and with every export)
    must still be in the chain: that also catches events removed from the end."""
    from bot.timeline.build import load_events
    from bot.timeline.chain import check_anchor
    from bot.timeline.chain import verify as verify_chain

    number = _number(incident)
    core = _core()
    try:
        with core.db.read() as session:
            events = [e.to_json() for e in load_events(session, number)]
    finally:
        core.db.dispose()
    if not events:
        raise click.ClickException(f"INC-{number} has no timeline.")
    try:
        verdict = verify_chain(events)
    except (KeyError, TypeError, ValueError) as err:
        click.echo(f"INC-{number}: timeline is malformed ({err}).", err=True)
        sys.exit(1)
    if verdict.ok:
        verdict = next((bad for seq, digest in anchors if (bad := check_anchor(events, seq, digest))), verdict)
    if verdict.ok:
        held = f", {len(anchors)} anchor(s) matched" if anchors else ""
        click.echo(f"INC-{number}: {verdict.count} events, hash chain intact{held} "
                   f"(head {events[-1]['seq']}:{events[-1]['hash']}).")
        return
    bad = next((e for e in events if e["seq"] == verdict.first_bad_seq), None)
    click.echo(f"INC-{number}: ALTERED at event #{verdict.first_bad_seq}: {verdict.reason}", err=True)
    if bad is not None:
        click.echo(f"  #{bad['seq']} {bad['at']} {bad['kind']} by {bad['actor']}: {bad['text'][:200]}", err=True)
    sys.exit(1)


def _day(_ctx, param, value: str | None):
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD).", param_hint=param.opts[0]) from None


@main.command()
@click.option("--from", "start", callback=_day, metavar="DATE", help="First day (YYYY-MM-DD, UTC). Default: 30 days ago.")
@click.option("--to", "end", callback=_day, metavar="DATE", help="Last day (YYYY-MM-DD, UTC). Default: today.")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "csv", "json"]), default="md", show_default=True)
@click.option("--people", is_flag=True, help="Add each person's figures (for the stewards' eyes only).")
def wellbeing(start, end, fmt: str, people: bool) -> None:
    """The stewards' wellbeing report: team viewing totals, people over the limits, breaks taken,
    responder hours (working, late, night) and, in HTML, a chart.

    No row for a group of fewer than three people; no person unless --people."""
    from datetime import timedelta

    from bot import wellbeing_report
    from bot.clocks.now import utcnow
    from bot.errors import DomainError

    end = end or utcnow().date()
    start = start or end - timedelta(days=29)
    core = _core()
    if core.settings.slack_bot_token:  # each person's own clock for the bands of their hours
        from runtime.slack_gateway import SlackGateway, make_client

        core.gateway = SlackGateway(make_client(core.settings.slack_bot_token, core.settings.slack_api_url,
                                                backoff=core.settings.slack_retry_backoff))
    try:
        report = wellbeing_report.steward_report(core, start, end, people=people)
        click.echo(wellbeing_report.render_report(core, report, fmt), nl=False)
    except DomainError as err:
        raise _fail(err) from None
    finally:
        core.db.dispose()


@main.command()
@click.option("--from", "start", callback=_day, metavar="DATE", help="First day (YYYY-MM-DD, UTC). Default: 29 days before --to.")
@click.option("--to", "end", callback=_day, metavar="DATE", help="Last day (YYYY-MM-DD, UTC). Default: today.")
@click.option("--playbook", default=None, metavar="ID", help="Only incidents of this playbook.")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "csv", "json"]), default="md", show_default=True)
def report(start, end, playbook: str | None, fmt: str) -> None:
    """Compliance across incidents: clocks met, time to report, pages, skips, forced closes, holds.

    Incident numbers only. The console is the operator's: it reads every incident (Slack and the
    /reports page give the same report to the incident leads only)."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.clocks.now import utcnow
    from bot.errors import DomainError
    from bot.reports.build import OPERATOR, build_report
    from bot.reports.period import period_of
    from bot.reports.render import render

    core = _core()
    try:
        period = period_of(start, end, utcnow().date())
        click.echo(render(build_report(core, OPERATOR, period, playbook=playbook), fmt,
                          template_dir=core.settings.templates_dir), nl=False)
    except DomainError as err:
        raise _fail(err) from None
    except SQLAlchemyError as err:
        raise _fail(f"{_where(core)}: cannot read the database ({type(err).__name__}); "
                    "run `safeguard db upgrade`?") from None
    finally:
        core.db.dispose()


def _where(core) -> str:
    from sqlalchemy import make_url

    return make_url(core.db.url).render_as_string(hide_password=True)


def _database():
    """The database of $DATABASE_URL, for the token commands: one line and exit 1 when it is
    missing, empty or older than the API (never created here)."""
    from bot.db.engine import Database
    from runtime.dbcheck import NoDatabase, require_database

    url = _settings().database_url
    try:
        require_database(url, table="api_tokens")
    except NoDatabase as err:
        raise _fail(err) from None
    return Database(url)


@main.group()
def token() -> None:
    """Tokens of the HTTP API (/api/v1): create, list, revoke."""


@token.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, metavar="SCOPE",
              help="declare, read, update or exposure; repeatable.")
def token_create(name: str, scopes: tuple[str, ...]) -> None:
    """Make a token NAME and print it (once: only its hash is kept)."""
    from bot import tokens
    from bot.errors import DomainError

    database = _database()
    try:
        secret = tokens.create(database, name, list(scopes))
    except DomainError as err:
        raise _fail(err) from None
    finally:
        database.dispose()
    click.echo(secret)
    click.echo(f"Token {name!r} ({', '.join(dict.fromkeys(scopes))}) acts as api:{name}. "
               "It is shown only now: store it in your secret manager.", err=True)


@token.command("list")
def token_list() -> None:
    """Tokens, their scopes, when they were made and revoked (never the tokens)."""
    from bot import tokens

    database = _database()
    try:
        rows = tokens.listing(database)
    finally:
        database.dispose()
    if not rows:
        click.echo("No tokens. Make one with `safeguard token create NAME --scope read`.")
        return
    click.echo(f"{'NAME':28}  {'SCOPES':32}  {'CREATED':20}  REVOKED")
    for row in rows:
        revoked = row.revoked_at.strftime("%Y-%m-%d %H:%M UTC") if row.revoked_at else "-"
        click.echo(f"{row.name:28}  {','.join(row.scopes):32}  {row.created_at.strftime('%Y-%m-%d %H:%M UTC'):20}  {revoked}")


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke token NAME: it stops working at once."""
    from bot import tokens
    from bot.errors import DomainError

    database = _database()
    try:
        info = tokens.revoke(database, name)
    except DomainError as err:
        raise _fail(err) from None
    finally:
        database.dispose()
    click.echo(f"Token {info.name!r} is revoked (since {info.revoked_at.strftime('%Y-%m-%d %H:%M:%S UTC')}).")


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
