"""What the office's routes depend on: the Office (settings, engine, cookie signer, templates,
login limits), built once by the app and handed to every route through `request.app.state`.

Routes import this module, never the app, so the app can import its routes without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine

from office.security import SessionSigner
from paylinks.access.accounts import ThrottleLimits
from paylinks.settings import Settings


@dataclass(frozen=True)
class Office:
    """What every route needs, built once per app."""

    settings: Settings
    engine: Engine
    signer: SessionSigner
    templates: Jinja2Templates
    throttle: ThrottleLimits
