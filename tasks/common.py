"""Tasks every flow starts with: check the configuration, find the tenants to work on."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from paylinks.club.tenants import Tenant, resolve_tenants
from paylinks.runtime import engine_for
from paylinks.settings import Settings
from paylinks.store.tables import check_database
from paylinks.stripe_api.keys import check_stripe_settings


@task(cache_policy=NO_CACHE)
def check_configuration(settings: Settings, needs_stripe: bool) -> None:
    """One clear message before any work: database reachable and migrated, Stripe key present."""
    check_database(engine_for(settings.database_url))
    if needs_stripe:
        check_stripe_settings(settings)


@task(cache_policy=NO_CACHE)
def find_tenants(settings: Settings, slug: str | None) -> list[Tenant]:
    """The tenant named by `slug`, or every tenant; an unknown slug is an error naming the known ones."""
    with engine_for(settings.database_url).connect() as connection:
        return resolve_tenants(connection, slug)
