"""Holding, settling and releasing credits around a billable request, in API terms."""

from __future__ import annotations

from fastapi import Request

from recordbank.api.auth import Principal
from recordbank.api.context import AppContext
from recordbank.api.errors import ApiError
from recordbank.billing import ledger
from recordbank.notify import webhooks


class Meter:
    """One billable request: hold the most it can cost, then settle what it did cost.

    Errors cost nothing: any failure releases the whole hold.
    """

    def __init__(self, ctx: AppContext, caller: Principal, request: Request) -> None:
        self.ctx = ctx
        self.caller = caller
        self.request = request
        self.hold_id: int | None = None
        self.held = 0
        self.charged = 0
        self.remaining: int | None = None

    def hold(self, amount: int) -> int:
        """Reserve `amount`; 402 if the balance cannot cover it. Returns the balance after."""
        try:
            held = ledger.hold(self.ctx.engine, self.caller.user_id, amount,
                               request_id=self.request.state.request_id,
                               endpoint=self.request.url.path)
        except ledger.InsufficientCredits as exc:
            raise ApiError(402, "INSUFFICIENT_CREDITS", str(exc),
                           details={"required": exc.required, "available": exc.available},
                           headers={"X-Credits-Remaining": str(exc.available)}) from exc
        self.hold_id, self.held = held.id, held.amount
        self.remaining = held.balance_after
        return held.balance_after

    def settle(self, cost: int) -> int:
        """Charge min(cost, held) and release the rest in one step. Returns the balance."""
        assert self.hold_id is not None
        hold_id, self.hold_id = self.hold_id, None
        self.charged = min(cost, self.held)
        try:
            self.remaining = ledger.settle(self.ctx.engine, hold_id, self.charged)
        except ledger.HoldClosed:
            # The stale-hold sweeper released it (a stream outlived hold_ttl_seconds): charge
            # what the balance still covers, as an adjustment that names the request.
            self.charged = min(self.charged, ledger.balance(self.ctx.engine, self.caller.user_id))
            if self.charged:
                ledger.adjust(self.ctx.engine, self.caller.user_id, -self.charged,
                              reason=f"charge after hold {hold_id} expired",
                              request_id=self.request.state.request_id)
            self.remaining = ledger.balance(self.ctx.engine, self.caller.user_id)
        self.request.state.credits_charged = self.charged
        if self.charged:  # webhooks whose balance threshold this charge went below
            webhooks.balance_changed(self.ctx.engine, self.caller.user_id,
                                     before=self.remaining + self.charged, after=self.remaining)
        return self.remaining

    def release(self, reason: str) -> None:
        if self.hold_id is not None:
            hold_id, self.hold_id = self.hold_id, None
            self.remaining = ledger.release(self.ctx.engine, hold_id, reason=reason)

    def headers(self) -> dict[str, str]:
        return {"X-Credits-Charged": str(self.charged),
                "X-Credits-Remaining": str(self.remaining if self.remaining is not None else "")}
