"""The random vector-OLE of DKLs23 (Doerner, Kondi, Lee, shelat, ePrint 2023/765, Protocol 5.2, "OT-based random
vector OLE", realising Functionality 3.5 F_RVOLE; the forced-reuse form of the DKLs19 multiplication).

Statement: Bob (the OT-extension receiver) gets a uniformly random b in Z_q, Alice (the extension sender) inputs
a in Z_q^ELL; Alice ends with c, Bob with d, such that c_i + d_i = a_i b for every i. A cheating Alice is caught by
the check with all but negligible probability and can at most make Bob abort depending on a few of his choice bits,
which the gadget encoding b = <g, beta> with XI = KAPPA + 2 STAT random gadget entries absorbs.

    Bob, round 1:    beta <- {0,1}^XI (the extension's choice bits), b = <g, beta>; sends the KOS message
    Alice, round 2:  KOS check; from the random OTs (v0_j, v1_j) in Z_q^(ELL+RHO):
                     a^ <- Z_q^RHO,  tau_j = v0_j - v1_j + (a, a^)                 (correction, per row j)
                     theta = H(context, tau) in Z_q^(RHO x ELL)
                     eta_k = a^_k + sum_i theta_ki a_i
                     mu = H(context, (v0_j,ELL+k + sum_i theta_ki v0_j,i)_(j,k))
                     c_i = -sum_j g_j v0_j,i;  sends (tau, eta, mu)
    Bob, finish:     d_j = v{beta_j}_j + beta_j tau_j  (= v0_j + beta_j (a, a^));
                     check mu == H(context, (d_j,ELL+k + sum_i theta_ki d_j,i - beta_j eta_k)_(j,k))
                                                                          ("dkls23.rvole.check", culprit Alice)
                     d_i = sum_j g_j d_j,i

The gadget g is derived from the extension context, so it is bound to the session and the ordered pair.
"""

from __future__ import annotations

import hashlib
import hmac
import operator
from dataclasses import dataclass
from itertools import compress
from typing import Iterable, Sequence

from ...crypto.ot._common import SecretHolder, abort
from ...crypto.ot.base_ot import KAPPA
from ...crypto.ot.kos import STAT, ExtensionMessage, OTEReceiverSetup, OTESenderSetup
from ...crypto.secp256k1 import Q, random_scalar
from ...errors import InvalidInput

XI = KAPPA + 2 * STAT  # OTs per multiplication (DKLs19: kappa + 2s)
ELL = 2  # DKLs23 multiplies Bob's one input by Alice's (r, sk)
RHO = 1  # check values: ceil(STAT / KAPPA)
_WIDTH = ELL + RHO
_MU_BYTES = 64


@dataclass(frozen=True)
class RVOLERequest:
    """Bob -> Alice (signing round 1): the OT-extension message."""

    extension: ExtensionMessage


@dataclass(frozen=True)
class RVOLEResponse:
    """Alice -> Bob (signing round 2): the corrections tau (XI rows of ELL + RHO 32-byte scalars), eta, mu."""

    tau: bytes
    eta: list[int]
    mu: bytes


_SLOTS = tuple(slice(32 * n, 32 * (n + 1)) for n in range(_WIDTH * XI))  # the 32-byte entries of tau


def _bits(value: int, n: int) -> list[int]:
    """Bits 0 .. n-1 of value."""
    return [int(c) for c in reversed(format(value, f"0{n}b"))]


def _scalars_mod_q(raw: bytes, count: int) -> list[int]:
    """`count` scalars from 48-byte big-endian blocks (384 bits reduced mod q: bias below 2^-128)."""
    return [int.from_bytes(raw[48 * n : 48 * (n + 1)], "big") % Q for n in range(count)]


def gadget(context: bytes) -> list[int]:
    """The public gadget vector g in Z_q^XI of one multiplication (random, derived from its extension context)."""
    return _scalars_mod_q(hashlib.shake_256(b"dkls23/rvole/gadget" + context).digest(48 * XI), XI)


def _theta(context: bytes, tau: bytes) -> list[list[int]]:
    vals = _scalars_mod_q(hashlib.shake_256(b"dkls23/rvole/theta" + context + tau).digest(48 * RHO * ELL), RHO * ELL)
    return [vals[ELL * k : ELL * (k + 1)] for k in range(RHO)]


def _mu(context: bytes, columns: Sequence[list[int]], theta: list[list[int]]) -> bytes:
    """H(context, (row_j,ELL+k + sum_i theta_ki row_j,i)_(j,k)) for rows given by column: columns[i][j] = row_j,i
    (ELL input columns, then RHO check columns); entries may be unreduced mod q."""
    values = []
    for k in range(RHO):
        acc: Iterable[int] = columns[ELL + k]
        for i in range(ELL):
            acc = map(operator.add, acc, map(theta[k][i].__mul__, columns[i]))
        values.append([v % Q for v in acc])
    h = hashlib.shake_256(b"dkls23/rvole/mu" + context)
    h.update(b"".join([v.to_bytes(32, "big") for row in zip(*values) for v in row]))
    return h.digest(_MU_BYTES)


class RVOLEReceiver(SecretHolder):
    """Bob's side of one multiplication with the peer of `setup`; `b` is his random input."""

    __slots__ = ("_request", "_ext", "_b", "_g", "_done", "me", "peer")

    def __init__(self, setup: OTEReceiverSetup, sid: bytes) -> None:
        if not isinstance(setup, OTEReceiverSetup):
            raise InvalidInput("need the OT-extension receiver setup of this pair")
        self.me, self.peer = setup.me, setup.peer
        self._request, self._ext = setup.extend(b"dkls23/rvole/" + bytes(sid), XI)
        self._g = gadget(self._ext.context)
        self._b = sum(compress(self._g, _bits(self._ext.choices, XI))) % Q
        self._done = False

    @property
    def b(self) -> int:
        """Bob's random input b = <g, beta>."""
        return self._b

    def request(self) -> RVOLERequest:
        return RVOLERequest(self._request)

    def finish(self, resp: RVOLEResponse) -> list[int]:
        """Check Alice's response and return d with c + d = a b."""
        if self._done:
            raise RuntimeError("this multiplication is finished")
        self._done = True
        if (
            not isinstance(resp, RVOLEResponse)
            or not isinstance(resp.tau, bytes)
            or len(resp.tau) != 32 * _WIDTH * XI
            or not isinstance(resp.eta, list)
            or len(resp.eta) != RHO
            or any(not isinstance(e, int) or isinstance(e, bool) or not 0 <= e < Q for e in resp.eta)
            or not isinstance(resp.mu, bytes)
            or len(resp.mu) != _MU_BYTES
        ):
            raise abort(self.peer, "rvole.shape", self.me, "malformed multiplication response")
        tau = resp.tau
        taus = list(map(int.from_bytes, map(tau.__getitem__, _SLOTS)))  # big-endian
        if max(taus) >= Q:
            raise abort(self.peer, "rvole.shape", self.me, "a correction is not reduced mod q")
        ctx = self._ext.context
        beta = _bits(self._ext.choices, XI)
        # d_j = v{beta_j}_j + beta_j tau_j by column (entries unreduced until the sums), and for the check the
        # hat columns less beta_j eta_k, so that the hash input matches Alice's v0 combination
        pads = self._ext.pad_values(_WIDTH)
        d = [list(map(operator.add, pads[i::_WIDTH], map(operator.mul, beta, taus[i::_WIDTH]))) for i in range(_WIDTH)]
        check = d[:ELL] + [list(map(operator.sub, d[ELL + k], map(resp.eta[k].__mul__, beta))) for k in range(RHO)]
        if not hmac.compare_digest(_mu(ctx, check, _theta(ctx, tau)), resp.mu):
            raise abort(self.peer, "rvole.check", self.me, "the multiplication check failed")
        return [sum(map(operator.mul, self._g, d[i])) % Q for i in range(ELL)]


def rvole_respond(setup: OTESenderSetup, sid: bytes, a: list[int], req: RVOLERequest) -> tuple[RVOLEResponse, list[int]]:
    """Alice's side: check Bob's request, multiply by her input a (ELL scalars); returns (response, c)."""
    if not isinstance(setup, OTESenderSetup):
        raise InvalidInput("need the OT-extension sender setup of this pair")
    if (
        not isinstance(a, (list, tuple))
        or len(a) != ELL
        or any(not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < Q for x in a)
    ):
        raise InvalidInput(f"a must be {ELL} scalars mod q")
    if not isinstance(req, RVOLERequest):
        raise abort(setup.peer, "rvole.shape", setup.me, "not a multiplication request")
    ext = setup.extend(b"dkls23/rvole/" + bytes(sid), req.extension, XI)
    v0, v1 = ext.pad_values(_WIDTH)
    alpha = list(a) + [random_scalar() for _ in range(RHO)]
    tau = b"".join([((p0 - p1 + al) % Q).to_bytes(32, "big") for p0, p1, al in zip(v0, v1, alpha * XI)])
    theta = _theta(ext.context, tau)
    eta = [(alpha[ELL + k] + sum(t * a[i] for i, t in enumerate(theta[k]))) % Q for k in range(RHO)]
    g = gadget(ext.context)
    columns = [v0[i::_WIDTH] for i in range(_WIDTH)]
    c = [(-sum(map(operator.mul, g, columns[i]))) % Q for i in range(ELL)]
    return RVOLEResponse(tau, eta, _mu(ext.context, columns, theta)), c


__all__ = ["ELL", "RHO", "XI", "RVOLEReceiver", "RVOLERequest", "RVOLEResponse", "gadget", "rvole_respond"]
