"""What every request needs, opened once per process."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from recordbank.api.auth import KeyCache
from recordbank.api.ratelimit import RateLimiter
from recordbank.billing.pricing import Pricing
from recordbank.billing.view import CreditView
from recordbank.config import Settings
from recordbank.store.client import Store
from recordbank.usage.log import UsageLog


@dataclass
class AppContext:
    settings: Settings
    store: Store
    engine: Engine
    pricing: Pricing
    limiter: RateLimiter
    usage: UsageLog
    secret: str
    keys: KeyCache
    credit_view: CreditView

