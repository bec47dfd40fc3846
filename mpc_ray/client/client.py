"""`MpcClient`: create keys and sign through the coordinator actor of a deployed committee."""

from __future__ import annotations

import secrets
from typing import Sequence

import ray

from .. import telemetry as tm  # ops hook: a client-side span and latency for every sign, one-hop or not
from ..coordinator.coordinator import COORDINATOR_NAME
from ..errors import InvalidInput
from ..types import SCHEMES, ChildKeyInfo, KeyInfo, Signature

DEFAULT_NAMESPACE = "mpc-ray"


class MpcClient:
    """A handle on a committee. Methods block until the coordinator answers; errors are `mpc_ray.errors` types."""

    def __init__(self, coordinator, threshold: int, parties: int) -> None:
        self._coordinator = coordinator
        self.default_threshold = threshold
        self.parties = parties

    def create_key(self, scheme: str = "ecdsa-secp256k1", *, threshold: int | None = None, key_id: str | None = None) -> KeyInfo:
        if scheme not in SCHEMES:
            raise InvalidInput(f"unknown scheme {scheme!r}; choose one of {SCHEMES}")
        key_id = key_id or f"key-{secrets.token_hex(8)}"
        info = ray.get(self._coordinator.create_key.remote(key_id, scheme, threshold or self.default_threshold))
        return KeyInfo(**info)

    @tm.traced_request("client.sign")
    def sign(self, key_id: str, message: bytes, *, tap_tweak: bytes | None = None, path: str | None = None) -> Signature:
        """ECDSA: `message` is the 32-byte digest; Ed25519 / BIP340 (FROST): the message bytes themselves.
        BIP340 only: `tap_tweak` (b"" or a 32-byte merkle root) signs for the BIP341 Taproot output key.
        ECDSA and BIP340: `path` ("m/0/7", non-hardened) signs for that BIP32 child (`derive(key_id, path)`).
        ECDSA without a path signs in one round to the signers with a leased presignature when one is at hand
        (client/fastpath.py); anything else goes through the coordinator."""
        if tap_tweak is None and path is None and isinstance(message, bytes) and len(message) == 32:
            fast = self._lease_book().sign(key_id, message)
            if fast is not None:
                return _ecdsa_signature(*fast)
        return self.sign_many(key_id, [message], tap_tweak=tap_tweak, path=path)[0]

    def _lease_book(self):
        leases = getattr(self, "_leases", None)
        if leases is None:
            from .fastpath import PresignatureLeases

            leases = self._leases = PresignatureLeases(self._coordinator)
        return leases

    def sign_many(self, key_id: str, messages: Sequence[bytes], *, tap_tweak: bytes | None = None,
                  path: str | None = None) -> list[Signature]:
        if isinstance(messages, (bytes, str)) or not all(isinstance(m, (bytes, bytearray)) for m in messages):
            raise InvalidInput("messages must be a list of bytes (ECDSA: 32-byte digests)")
        msgs = [bytes(m) for m in messages]
        if path is not None and not isinstance(path, str):
            raise InvalidInput("a derivation path is a string like 'm/0/7'")
        if tap_tweak is not None:  # FROST hook
            return ray.get(self._coordinator.frost_sign_many.remote(key_id, msgs, tap_tweak, path))
        out = ray.get(self._coordinator.sign_many.remote(key_id, msgs, path))
        return [s if isinstance(s, Signature) else _ecdsa_signature(*s) for s in out]  # FROST: Signature objects

    def derive(self, key_id: str, path: str) -> ChildKeyInfo:
        """The BIP32 child of a key at a non-hardened `path` ("m/0/7"): its public key (33-byte compressed for ECDSA,
        32-byte x-only for BIP340), chain code and xpub. Sign for it with `sign(key_id, msg, path=path)`."""
        return ChildKeyInfo(**ray.get(self._coordinator.derive.remote(key_id, path)))

    # policy-enforced signing: requests are built and signed with mpc_ray.node.principals.sign_request -------
    def bootstrap_principals(self, registry) -> None:
        """Deployment step: the first principals (a `PrincipalRegistry`) for every holder."""
        ray.get(self._coordinator.bootstrap_principals.remote(registry.to_bytes()))

    def set_policy(self, request) -> None:
        """Apply an admin-signed policy request on every holder."""
        ray.get(self._coordinator.set_policy.remote(request))

    def set_principals(self, request) -> None:
        """Replace the principals on every holder: a ``set_principals`` request whose body is the new
        `PrincipalRegistry`, signed (`cosign`) by as many admins as the current registry's admin_quorum."""
        ray.get(self._coordinator.set_principals.remote(request))

    def sign_request(self, request) -> Signature:
        """Sign an agent-signed request (an EVM transaction, EIP-712 data, ...). Every signer checks its own policy;
        a refusal is `PolicyDenied` naming the rule."""
        fast = self._lease_book().sign_request(request)  # one hop when a leased presignature is at hand
        if fast is not None:
            return _ecdsa_signature(*fast)
        out = ray.get(self._coordinator.sign_request.remote(request))
        return out if isinstance(out, Signature) else _ecdsa_signature(*out)  # FROST keys: a Signature already

    def sign_requests(self, requests: Sequence) -> list:
        """Several agent-signed requests in one call: each holder checks them in order and writes one audit record
        per request with a single fsync for the batch. Each request is answered on its own, in order: a `Signature`,
        or the error that refused it (e.g. `PolicyDenied`), returned in its place rather than raised."""
        if isinstance(requests, (bytes, str)) or not isinstance(requests, Sequence):
            raise InvalidInput("requests must be a list of signed requests")
        out = ray.get(self._coordinator.sign_requests.remote(list(requests)))
        return [o if isinstance(o, (Signature, BaseException)) else _ecdsa_signature(*o) for o in out]

    # agent-facing handles and wallets (client/handle.py, aio.py, evm.py, solana.py, bitcoin.py) -------------
    def handle(self, *, agent=None, timeout: float = 60.0):
        """A `SignHandle` on this committee: timeouts, typed errors; with `agent` (client.signer.Agent) every
        signature is a request signed by that agent, which the nodes decode and check against its policy."""
        from .handle import SignHandle

        return SignHandle(self._coordinator, agent=agent, timeout=timeout, parties=self.parties)

    def aio(self, *, agent=None, timeout: float = 60.0):
        """The asyncio twin of `handle()` (awaits Ray ObjectRefs on the running event loop)."""
        return self.handle(agent=agent, timeout=timeout).aio

    def evm_wallet(self, key_id: str, *, path: str | None = None, agent=None, timeout: float = 60.0):
        """An eth-account-shaped `EvmWallet` (.address, sign_transaction, sign_message, sign_typed_data); with
        `path` ("m/0/7") the account of that BIP32 child."""
        return self.handle(agent=agent, timeout=timeout).evm_wallet(key_id, path=path)

    def solana_wallet(self, key_id: str, *, agent=None, timeout: float = 60.0):
        return self.handle(agent=agent, timeout=timeout).solana_wallet(key_id)

    def taproot_wallet(self, key_id: str, *, network: str = "mainnet", path: str | None = None, agent=None,
                       timeout: float = 60.0):
        return self.handle(agent=agent, timeout=timeout).taproot_wallet(key_id, network=network, path=path)

    # key lifecycle -------------------------------------------------------------------------------------
    def refresh_key(self, key_id: str) -> dict:
        """Proactive refresh: new shares (ECDSA: and new aux info) for the same committee and public key; every
        pooled presignature or nonce of the old epoch is destroyed. Needs every holder of the key up."""
        return ray.get(self._coordinator.refresh_key.remote(key_id))

    def reshare_key(self, key_id: str, *, parties: Sequence[int], threshold: int,
                    dealers: Sequence[int] | None = None) -> dict:
        """Move the key to committee `parties` (new or removed nodes) with `threshold` signers; same public key
        and addresses. Removed holders delete their shares once the new committee confirmed its own."""
        if isinstance(parties, int) or not parties:
            raise InvalidInput("parties must be a list of party indices")
        return ray.get(self._coordinator.reshare_key.remote(key_id, sorted(parties), threshold,
                                                            None if dealers is None else sorted(dealers)))

    def drop_pools(self, party: int) -> int:
        """After restoring party's holder from a backup (`ShareHolder.restore`, run on its node: the passphrase
        never travels through the coordinator), forget the pooled presignatures and nonces it discarded."""
        return ray.get(self._coordinator.drop_pools.remote(party))

    def status(self) -> dict:
        return ray.get(self._coordinator.status.remote())

    def pool_depths(self) -> dict[str, int]:
        return ray.get(self._coordinator.pool_depths.remote())

    def wait_for_pools(self, key_id: str, depth: int, timeout: float = 300.0) -> dict[str, int]:
        """Block until every signer set's pool of `key_id` holds `depth` presignatures (the refill works meanwhile)."""
        import time

        import itertools

        st = self.status()
        info = st["keys"].get(key_id, {})
        expected: set[str] = set()
        if info.get("scheme", "ecdsa-secp256k1") == "ecdsa-secp256k1" and "threshold" in info:
            # every signer set's pool, including those the refill has not reached yet
            members = info.get("members", st["parties"])  # the key's own committee (it may differ after a reshare)
            expected = {f"{key_id}:{'-'.join(map(str, c))}" for c in itertools.combinations(members, info["threshold"])}
        deadline = time.monotonic() + timeout
        while True:
            current = self.pool_depths()
            if expected:
                depths = {name: current.get(name, 0) for name in expected}
            else:
                depths = {k: v for k, v in current.items() if k.startswith(key_id + ":")}
            if depths and min(depths.values()) >= depth:
                return depths
            if time.monotonic() > deadline:
                raise TimeoutError(f"pools of {key_id} did not reach {depth}: {depths}")
            time.sleep(0.2)


def _ecdsa_signature(raw: bytes, recovery_id: int) -> Signature:
    return Signature.ecdsa(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"), recovery_id)


def connect(address: str = "auto", *, namespace: str = DEFAULT_NAMESPACE) -> MpcClient:
    """Attach to an existing Ray cluster with a deployed committee (coordinator named `mpc-coordinator`)."""
    if not ray.is_initialized():
        ray.init(address=address, namespace=namespace)
    coord = ray.get_actor(COORDINATOR_NAME, namespace=namespace)
    st = ray.get(coord.status.remote())
    return MpcClient(coord, threshold=st["threshold"], parties=len(st["parties"]))
