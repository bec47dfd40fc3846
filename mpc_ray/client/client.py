"""`MpcClient`: create keys and sign through the coordinator actor of a deployed committee."""

from __future__ import annotations

import secrets
from typing import Sequence

import ray

from .. import telemetry as tm  # ops hook: a client-side span and latency for every sign, one-hop or not
from ..deploy import COORDINATOR_NAME
from ..errors import InvalidInput, QuorumUnavailable
from ..protocols.ecdsa_protocols import CGGMP21, DEFAULT_ECDSA_PROTOCOL
from ..requests import RequestKind
from ..requests.raw_batch import RAW_BATCH_BYTES, RAW_BATCH_MESSAGES, raw_chunks  # noqa: F401  (old import path)
from .credentials import Credentials
from .raycall import get
from ..types import SCHEMES, ChildKeyInfo, EpochResult, KeyInfo, Scheme, Signature, Status

DEFAULT_NAMESPACE = "mpc-ray"


class MpcClient:
    """A handle on a committee. Methods block until the coordinator answers; errors are `mpc_ray.errors` types."""

    def __init__(self, coordinator, threshold: int, parties: int, credentials: Credentials | None = None) -> None:
        self._coordinator = coordinator
        self.default_threshold = threshold
        self.parties = parties
        self.credentials = credentials  # the admin and operator keys this client signs its requests with

    def _creds(self) -> Credentials:
        if self.credentials is None:
            raise InvalidInput("this client holds no principal keys: pass credentials= or set MPC_RAY_CREDENTIALS "
                               "(see mpc_ray/client/credentials.py)")
        return self.credentials

    def committee(self) -> list[int]:
        """The parties of the committee (new keys are shared among all of them)."""
        return list(get(self._coordinator.status.remote())["parties"])

    def create_key(self, scheme: Scheme | str = Scheme.ECDSA_SECP256K1, *, threshold: int | None = None,
                   key_id: str | None = None, protocol: str | None = None) -> KeyInfo:
        """A new key shared among the whole committee, approved by this client's admins (every holder checks the
        approval names this key, scheme, threshold and committee). With dev credentials (`local_cluster`), the key
        also gets a permissive operator policy so that `sign` works at once. ECDSA: `protocol` "dkls23" (the
        default, `DEFAULT_ECDSA_PROTOCOL`: OT-based, no aux info, presigning ~13x cheaper) or "cggmp21"
        (identifiable abort in presigning, Paillier aux info; protocols/ecdsa_protocols.py), fixed for the key's
        life and named in the approval unless it is CGGMP21 (an approval naming none means CGGMP21)."""
        if scheme not in SCHEMES:
            raise InvalidInput(f"unknown scheme {scheme!r}; choose one of {SCHEMES}")
        scheme = Scheme(scheme).value  # the plain string travels (signed approval, holders' records)
        key_id = key_id or f"key-{secrets.token_hex(8)}"
        threshold = self.default_threshold if threshold is None else threshold  # 0 is an error, not "default"
        creds = self._creds()
        committee = sorted(self.committee())
        if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= len(committee):
            raise InvalidInput(f"threshold must be between 1 and {len(committee)} (the committee's size), "
                               f"not {threshold!r}")
        params = {"key_id": key_id, "scheme": scheme, "threshold": threshold, "parties": committee}
        if protocol is None and scheme == Scheme.ECDSA_SECP256K1.value:
            protocol = DEFAULT_ECDSA_PROTOCOL  # resolved here: the holders read an approval naming none as CGGMP21
        if protocol is not None and protocol != CGGMP21.name:  # a CGGMP21 approval names no protocol
            params["protocol"] = protocol
        approval = creds.admin_request(RequestKind.CREATE_KEY, params)
        extra = () if protocol is None else (protocol,)
        info = get(self._coordinator.create_key.remote(key_id, scheme, threshold, approval, *extra))
        if creds.operator_policy and creds.operator is not None:
            self.set_policy(creds.operator_policy_request(key_id))
        return KeyInfo(**info)

    @tm.traced_request("client.sign")
    def sign(self, key_id: str, message: bytes, *, tap_tweak: bytes | None = None, path: str | None = None) -> Signature:
        """ECDSA: `message` is the 32-byte digest; Ed25519 / BIP340 (FROST): the message bytes themselves.
        BIP340 only: `tap_tweak` (b"" or a 32-byte merkle root) signs for the BIP341 Taproot output key.
        ECDSA and BIP340: `path` ("m/0/7", non-hardened) signs for that BIP32 child (`derive(key_id, path)`).
        ECDSA without a path signs in one round to the signers with a leased presignature when one is at hand
        (client/fastpath.py); anything else goes through the coordinator."""
        if not isinstance(message, (bytes, bytearray)):
            raise InvalidInput("message must be bytes (ECDSA: a 32-byte digest)")
        message = bytes(message)
        if tap_tweak is None and path is None and len(message) == 32:
            fast = self._lease_book().sign(key_id, self._raw_requests(key_id, [message], None, None)[0])
            if fast is not None:
                return _ecdsa_signature(*fast)
        return self._sign_raw(key_id, self._raw_requests(key_id, [message], tap_tweak, path))[0]

    def _raw_requests(self, key_id: str, messages: list[bytes], tap_tweak: bytes | None, path: str | None) -> list:
        """The operator's raw_batch requests for `messages`, in chunks the holders take in one request."""
        if path is not None and not isinstance(path, str):
            raise InvalidInput("a derivation path is a string like 'm/0/7'")
        creds = self._creds()
        chunks = [messages[lo:hi] for lo, hi in raw_chunks(messages)]
        return [creds.operator_request(key_id, c, tap_tweak=tap_tweak, path=path) for c in chunks]

    def _sign_raw(self, key_id: str, requests: list) -> list[Signature]:
        out = []
        for request in requests:
            got = get(self._coordinator.sign_many.remote(key_id, request))
            out.extend(s if isinstance(s, Signature) else _ecdsa_signature(*s) for s in got)  # FROST: Signatures
        return out

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
        if not msgs:
            return []
        return self._sign_raw(key_id, self._raw_requests(key_id, msgs, tap_tweak, path))

    def derive(self, key_id: str, path: str) -> ChildKeyInfo:
        """The BIP32 child of a key at a non-hardened `path` ("m/0/7"): its public key (33-byte compressed for ECDSA,
        32-byte x-only for BIP340), chain code and xpub. Sign for it with `sign(key_id, msg, path=path)`."""
        return ChildKeyInfo(**get(self._coordinator.derive.remote(key_id, path)))

    # policy-enforced signing: requests are built and signed with mpc_ray.requests.sign_request -------
    def bootstrap_principals(self, registry) -> None:
        """Deployment step: the first principals (a `PrincipalRegistry`) for every holder. On a committee this client
        already registered (`local_cluster`), its admins replace the registry with `registry` plus this client's
        own admin and operator (a ``set_principals`` request), so that it can still create keys and sign."""
        if self.credentials is None or not getattr(self, "_registered", False):
            get(self._coordinator.bootstrap_principals.remote(registry.to_bytes()))
            self._registry_bytes = registry.to_bytes()  # what a node this client adds later is bootstrapped with
            self._registry_version = getattr(registry, "version", 1)
            return
        from ..requests import PrincipalRegistry

        own = [p for p in self.credentials.principals() if registry.get(p.id) is None]
        # above both the registry this client installed last and the one given: the holders refuse a stale version
        self._registry_version = max(getattr(self, "_registry_version", 1) + 1, getattr(registry, "version", 1))
        fields = {"principals": tuple(registry.principals) + tuple(own), "admin_quorum": registry.admin_quorum}
        if "version" in PrincipalRegistry.model_fields:
            fields["version"] = self._registry_version
        merged = PrincipalRegistry(**fields)
        self.set_principals(self.credentials.admin_request(RequestKind.SET_PRINCIPALS, body=merged.to_bytes()))

    def set_policy(self, request) -> None:
        """Apply an admin-signed policy request on every holder."""
        get(self._coordinator.set_policy.remote(request))

    def set_principals(self, request) -> None:
        """Replace the principals on every holder: a ``set_principals`` request whose body is the new
        `PrincipalRegistry`, signed (`cosign`) by as many admins as the current registry's admin_quorum."""
        get(self._coordinator.set_principals.remote(request))
        from ..requests import PrincipalRegistry

        self._registry_bytes = request.body  # the registry every holder now has (add_node bootstraps new ones)
        self._registry_version = PrincipalRegistry.from_bytes(request.body).version

    def sign_request(self, request) -> Signature:
        """Sign an agent-signed request (an EVM transaction, EIP-712 data, ...). Every signer checks its own policy;
        a refusal is `PolicyDenied` naming the rule."""
        fast = self._lease_book().sign_request(request)  # one hop when a leased presignature is at hand
        if fast is not None:
            return _ecdsa_signature(*fast)
        out = get(self._coordinator.sign_request.remote(request))
        return out if isinstance(out, Signature) else _ecdsa_signature(*out)  # FROST keys: a Signature already

    def sign_requests(self, requests: Sequence) -> list:
        """Several agent-signed requests in one call: each holder checks them in order and writes one audit record
        per request with a single fsync for the batch. Each request is answered on its own, in order: a `Signature`,
        or the error that refused it (e.g. `PolicyDenied`), returned in its place rather than raised."""
        if isinstance(requests, (bytes, str)) or not isinstance(requests, Sequence):
            raise InvalidInput("requests must be a list of signed requests")
        out = get(self._coordinator.sign_requests.remote(list(requests)))
        return [o if isinstance(o, (Signature, BaseException)) else _ecdsa_signature(*o) for o in out]

    # agent-facing handles and wallets (client/handle.py, aio.py, evm.py, solana.py, bitcoin.py) -------------
    def handle(self, *, agent=None, timeout: float = 60.0):
        """A `SignHandle` on this committee: timeouts, typed errors; with `agent` (client.signer.Agent) every
        signature is a request signed by that agent, which the nodes decode and check against its policy; without,
        direct signatures are requests of this client's operator."""
        from .handle import SignHandle

        return SignHandle(self._coordinator, agent=agent, timeout=timeout, parties=self.parties,
                          credentials=self.credentials)

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
    def refresh_key(self, key_id: str) -> EpochResult:
        """Proactive refresh: new shares (ECDSA: and new aux info) for the same committee and public key; every
        pooled presignature or nonce of the old epoch is destroyed. Needs every holder of the key up. Approved by
        this client's admins."""
        approval = self._creds().admin_request(RequestKind.REFRESH_KEY, {"key_id": key_id})
        return EpochResult.from_dict(get(self._coordinator.refresh_key.remote(key_id, approval)))

    def reshare_key(self, key_id: str, *, parties: Sequence[int], threshold: int,
                    dealers: Sequence[int] | None = None) -> EpochResult:
        """Move the key to committee `parties` (new or removed nodes) with `threshold` signers; same public key
        and addresses. Removed holders delete their shares once the new committee confirmed its own."""
        if isinstance(parties, int) or not parties:
            raise InvalidInput("parties must be a list of party indices")
        approval = self._creds().admin_request(RequestKind.RESHARE_KEY, {"key_id": key_id, "parties": sorted(parties),
                                                                         "threshold": threshold})
        out = get(self._coordinator.reshare_key.remote(key_id, sorted(parties), threshold,
                                                           None if dealers is None else sorted(dealers), approval))
        creds = self.credentials
        if creds.operator_policy and creds.operator is not None:  # dev credentials: new members need it too
            self.set_policy(creds.operator_policy_request(key_id))
        return EpochResult.from_dict(out)

    def backup_request(self, party: int):
        """An admin-approved ``backup`` request for `party`'s holder (`ShareHolder.backup(request, passphrase)`,
        called on its node: the passphrase never travels through the coordinator)."""
        return self._creds().admin_request(RequestKind.BACKUP, {"party": party})

    def restore_request(self, party: int, blob: bytes):
        """An admin-approved ``restore`` request for this backup blob onto `party`'s holder."""
        from ..requests import restore_params

        return self._creds().admin_request(RequestKind.RESTORE, restore_params(party, blob))

    def set_coordinator(self, verify_key: bytes) -> None:
        """Make `verify_key` the coordinator's identity on every holder (an admin-quorum ``set_coordinator`` request,
        audited by each): from then on only grants it signs start presigning, aux-info and identification sessions
        and FROST nonce commitments. Then restart the coordinator with that key's seed
        (CoordinatorConfig.coordinator_seed; `Credentials.coordinator_seed` for `local_cluster` and `mpc-ray up`)."""
        if not isinstance(verify_key, (bytes, bytearray)) or len(verify_key) != 32:
            raise InvalidInput("a coordinator verify key is 32 bytes")
        approval = self._creds().admin_request(RequestKind.SET_COORDINATOR, {"verify_key": bytes(verify_key).hex()})
        get(self._coordinator.set_coordinator.remote(approval, bytes(verify_key)))

    def drop_pools(self, party: int) -> int:
        """After restoring party's holder from a backup (`ShareHolder.restore`, run on its node: the passphrase
        never travels through the coordinator), forget the pooled presignatures and nonces it discarded."""
        return get(self._coordinator.drop_pools.remote(party))

    def readmit(self, party: int) -> dict:
        """Let the coordinator use `party` again after it was excluded for a bad value or lost identification
        disputes (status()["excluded"], ["disputes"]): e.g. once its node was rebuilt. An availability setting of the
        coordinator; the holders check every value themselves either way."""
        return get(self._coordinator.readmit.remote(party))

    def status(self) -> Status:
        """The committee, its keys, pools, and the parties down, excluded or in dispute (`Status`; it also reads
        like the dict it was: ``status()["keys"]``)."""
        return Status.from_dict(get(self._coordinator.status.remote()))

    def pool_depths(self) -> dict[str, int]:
        return get(self._coordinator.pool_depths.remote())

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


def connect(address: str = "auto", *, namespace: str = DEFAULT_NAMESPACE,
            credentials: Credentials | None = None) -> MpcClient:
    """Attach to an existing Ray cluster with a deployed committee (coordinator named `mpc-coordinator`). The
    principal keys come from `credentials`, else from the environment (`Credentials.load`)."""
    if not ray.is_initialized():
        try:
            ray.init(address=address, namespace=namespace)
        except ConnectionError as exc:  # Ray's message names files and env variables, not what to do
            raise QuorumUnavailable(f"no Ray cluster at {address!r} ({type(exc).__name__}): start one "
                                    "(`mpc-ray up`) or pass its address") from None
    try:
        coord = ray.get_actor(COORDINATOR_NAME, namespace=namespace)
    except ValueError:  # Ray: "Failed to look up actor ..."
        raise QuorumUnavailable(f"no committee on this cluster: no {COORDINATOR_NAME!r} actor in namespace "
                                f"{namespace!r}") from None
    st = get(coord.status.remote())
    client = MpcClient(coord, threshold=st["threshold"], parties=len(st["parties"]),
                       credentials=credentials if credentials is not None else Credentials.load())
    client._registered = True  # a deployed committee has its principals already
    return client
