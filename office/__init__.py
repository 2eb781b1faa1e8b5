"""The club office: the web app for admins and coaches, the admin endpoint and the Stripe webhook
receiver. Only the `paylinks` command (cli/) imports it."""

from office.app import create_app

__all__ = ["create_app"]
