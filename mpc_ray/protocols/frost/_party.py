"""Shared base of the FROST round parties: check names and decoding of suite-encoded fields."""

from __future__ import annotations

from typing import Sequence

from ...crypto.frost_suites import Ciphersuite, Element
from ...errors import ProtocolAbort
from ..base import Envelope, RoundParty

DECODE_CHECK = "frost.decode"


class FrostRoundParty(RoundParty):
    """A RoundParty whose aborts all read "frost....": undecodable payloads become "frost.decode"."""

    suite: Ciphersuite

    def receive(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        r = self._waiting_for
        try:
            return super().receive(envelopes)
        except ProtocolAbort as exc:
            if exc.check == f"{self.NAME}.round{r}.decode":
                raise ProtocolAbort(exc.culprit, DECODE_CHECK, exc.detail, exc.reporter) from None
            raise

    def _element(self, culprit: int, data: bytes, check: str) -> Element:
        """Decode a point from `culprit`: canonical, on the curve, prime-order subgroup, not the identity."""
        try:
            return self.suite.group.deserialize_element(data)
        except ValueError as exc:
            raise self.abort(culprit, check, str(exc)) from None

    def _scalar(self, culprit: int, data: bytes, check: str) -> int:
        """Decode a scalar from `culprit`: exact length, canonical (< group order). The detail never holds it."""
        try:
            return self.suite.group.deserialize_scalar(data)
        except ValueError as exc:
            raise self.abort(culprit, check, str(exc)) from None
