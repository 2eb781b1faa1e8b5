"""`paylinks family rotate --tenant SLUG --parent ID`: a parent's family page gets a new address;
the old one is a 404 at once. Audited as the command line's."""

from __future__ import annotations

import typer

from cli.app import app, console, fail, guarded

family_app = typer.Typer(
    help="Parents' family pages (every child's bills, and 'Pay all').", no_args_is_help=True
)
app.add_typer(family_app, name="family")


@family_app.command("rotate")
def family_rotate(
    ctx: typer.Context,
    tenant: str = typer.Option(..., help="Tenant slug."),
    parent: int = typer.Option(..., min=1, help="The parent's id."),
) -> None:
    """Give the parent's family page a new address (printed once): the old one stops working at once."""
    from cli.people import _in_database
    from paylinks.access.audit import COMMAND_LINE
    from paylinks.club.tenants import tenant_by_slug
    from paylinks.family.secret import family_secret
    from paylinks.family.tokens import family_url, rotate_family_token
    from tasks.run_settings import with_secret_blocks

    settings = guarded(
        lambda: with_secret_blocks(ctx.obj.settings, (("family_link_secret", "family_link_secret_block"),))
    )
    secret = guarded(lambda: family_secret(settings))

    def rotate(connection):  # type: ignore[no-untyped-def]
        club = tenant_by_slug(connection, tenant)
        return club, rotate_family_token(connection, secret, club.id, parent, COMMAND_LINE)

    club, rotated = _in_database(settings, rotate)
    if rotated is None:
        fail(f"tenant {club.slug} has no parent {parent}")
    console.print(
        f"parent {parent} of {club.slug}: the family page's new address (the old one no longer opens): "
        f"{family_url(settings.office_url, rotated.token)}",
        markup=False,
        soft_wrap=True,
    )
