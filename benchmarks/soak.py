"""Soak with faults: an embedded 2-of-3 committee signs for a long time while a seeded schedule breaks it.

    python benchmarks/soak.py [--signatures 20000] [--min-faults 0] [--duration S] [--seed N] [--fault-every 12]
                              [--rpc-share 0.3] [--rpc-failure-pct 1] [--rpc-delay-us 2000] [--json PATH]

What runs (security "112", the credentials `local_cluster` provisions, plus an admin and two agents):
- ECDSA digests (one-hop `mpc.sign`, and `sign_many` of two through the coordinator), FROST Ed25519 and BIP340
  `sign_many` batches, an EVM agent's ERC-20 transfers on the ECDSA key and a Solana agent's transfers on the Ed25519
  key, each under a policy with per-transaction caps, rolling window caps and (EVM) a rate limit that the load
  exceeds, so the nodes refuse some (PolicyDenied, expected). ECDSA presigning is slow on 2 cores, so ECDSA work
  (digests and EVM requests) is paced at `--ecdsa-per-s`; FROST fills the rest.
- Faults, one at a time from a schedule drawn from `--seed` (printed as they happen): a party's Ray node removed and
  added back (`kill_node` / `restart_node`), a holder actor, a presign worker or the coordinator killed with
  `ray.kill` (Ray restarts each: max_restarts=-1); between phases the whole committee stops and starts again on the
  same disks (`committee_restart`).
- Ray's own RPC chaos in a middle phase (`--rpc-share` of the signatures): the committee restarts with
  ``RAY_testing_rpc_failure`` (every actor call, PushTask, in every process fails its request or its response with
  `--rpc-failure-pct` percent each, a whole number) and ``RAY_testing_asio_delay_us`` (0 to `--rpc-delay-us` on
  each PushTask).
  Ray reads both when its processes start, hence the phase; the injected failures are counted from Ray's logs.
  The last phase runs clean again, so the final checks read the holders without chaos.

What is checked at the end (each must-be-0 makes the exit status 1):
- wrong signatures: every signature verifies under an independent library (coincurve for ECDSA, low-s included,
  and BIP340 x-only keys; PyNaCl for Ed25519), against the digest or message this script computed itself;
- reuses: an ECDSA r or a FROST R seen twice; a presignature or nonce id that two audit records consumed (on one
  holder, or for two different messages); a FROST nonce id (each holder draws its own) in two holders' ledgers;
- losses: a signature without an ``allow`` audit record on at least `threshold` holders; an id an audit record
  consumed that is missing from that holder's consumed-id ledger (`consumed_ids`); an audit chain that does not
  verify (`node/audit.verify_chain`, what `mpc-ray audit verify` runs);
- cap violations: an agent spend above its per-transaction cap, or a rolling window (each window starting at a
  request's send time) whose signed spends or requests exceed the policy's cap, counting only signatures whose
  send-to-answer interval lies inside the window (both approvals were made inside it);
- untyped errors: a failed request whose error is not an `mpc_ray.errors` type, or only the bare `MpcError` that
  wraps an unexpected exception.
Writes the report to stdout and JSON to benchmarks/results/soak-<date>.json (or `--json`).
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import datetime
import glob
import hashlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import coincurve  # noqa: E402
import nacl.exceptions  # noqa: E402
import nacl.signing  # noqa: E402
import ray  # noqa: E402
from coincurve.ecdsa import cdata_to_der, deserialize_compact  # noqa: E402
from eth_utils import keccak  # noqa: E402
from solders.hash import Hash  # noqa: E402
from solders.message import Message  # noqa: E402
from solders.pubkey import Pubkey  # noqa: E402
from solders.system_program import TransferParams, transfer  # noqa: E402

import mpc_ray  # noqa: E402
from common import cpu_model  # noqa: E402  (benchmarks/common.py)
from mpc_ray.coordinator.coordinator import COORDINATOR_NAME, HOLDER_NAME, WORKER_NAME  # noqa: E402
from mpc_ray.errors import InvalidInput, MpcError, PolicyDenied  # noqa: E402
from mpc_ray.node.audit import iter_records, verify_chain  # noqa: E402
from mpc_ray.node.policy import AssetLimit, Policy, RateLimit, TxType, WindowCap, native_asset  # noqa: E402
from mpc_ray.node.principals import Principal, PrincipalRegistry, sign_request  # noqa: E402
from tests.support.policies import (  # noqa: E402
    ALICE, BASE, BOB, ETH_ASSET, SOLANA, USDC_ASSET, eip1559, erc20_call, unsigned_bytes)

NAMESPACE = "mpc-ray"  # local_cluster's default
KINDS = ("ecdsa", "ed25519", "bip340", "agent_evm", "agent_solana")
PROCESS_FAULTS = ("node_kill", "holder_kill", "worker_kill", "coordinator_kill")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SOL_FRIEND = Pubkey.from_string("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")

# the agents' policies: caps the paced load exceeds now and then, so the nodes must refuse some
EVM_PER_TX, EVM_WINDOW_S, EVM_WINDOW_CAP = 5_000_000, 30, 60_000_000  # USDC base units
EVM_RATE_WINDOW_S, EVM_RATE_MAX = 30, 24
SOL_PER_TX, SOL_WINDOW_S, SOL_WINDOW_CAP = 1_000_000, 30, 12_000_000  # lamports
SOL_FEE = 5_000  # lamports per signature: the nodes count a transfer's fee in its spend (the worst-case debit)


@dataclasses.dataclass
class SoakConfig:
    signatures: int = 20_000  # stop after this many signatures (all kinds)
    min_faults: int = 0  # and not before this many process faults (kills), unless the duration runs out
    duration_s: float | None = None  # or after this long (whichever comes first)
    seed: int = 1
    fault_every_s: float = 12.0  # mean gap between process faults (exponential), once the previous one recovered
    node_down_s: tuple[float, float] = (1.0, 6.0)  # how long a removed node stays away
    frost_batch: int = 64  # messages per FROST sign_many
    ecdsa_per_s: float = 1.5  # ECDSA digests + EVM agent requests per second
    solana_per_s: float = 1.0  # Solana agent requests per second
    over_cap_share: float = 0.05  # agent requests above the per-transaction cap (must be refused)
    rpc_share: float = 0.3  # share of the signatures made in the RPC-chaos phase (0: no such phase)
    final_share: float = 0.1  # share made in the last, clean phase
    rpc_failure_pct: int = 1  # per PushTask: percent request failures, and as many response failures (Ray reads a
    # whole number: 0.5 reads as 0)
    rpc_delay_us: int = 2000  # PushTask delays drawn from 0..this
    pool_depth: int = 16
    timeout_s: float = 60.0  # per signing call (SignHandle)
    stall_s: float = 600.0  # no signature or policy decision for this long: print every thread's stack, exit 3
    state_dir: str | None = None  # kept if given


@dataclasses.dataclass
class Sig:
    kind: str
    public_key: bytes
    message: bytes  # ECDSA: the 32-byte digest this script computed; FROST: the message bytes
    signature: bytes  # 64 bytes: r||s, or R||z
    ref: tuple[str, str]  # what the holders' audit records name: ("msg", sha256 hex) or ("req", request digest hex)
    t0: float
    t1: float
    spend: int | None = None  # agent requests: the amount of the capped asset


class Soak:
    def __init__(self, cfg: SoakConfig, log: Callable[[str], None] = print) -> None:
        self.cfg, self.log = cfg, log
        self.rng = random.Random(cfg.seed)  # the workload's choices
        self.fault_rng = random.Random(cfg.seed * 7919 + 1)  # the fault schedule, independent of the workload
        self.fault_bag: list[str] = []
        self.sigs: list[Sig] = []
        self.errors: Counter[str] = Counter()  # failed requests by error type (policy denials apart)
        self.denials: Counter[str] = Counter()  # PolicyDenied by rule: expected, the caps bind
        self.untyped: list[str] = []
        self.samples: dict[str, str] = {}  # the first message of each error type and denial rule
        self.over_cap_signed = 0
        self.faults: Counter[str] = Counter()
        self.fault_log: list[dict] = []
        self.rpc_injected: Counter[str] = Counter()
        self.recovery_timeouts = 0
        self.keys: dict[str, Any] = {}
        self.phase = ""
        self.last_progress = time.monotonic()
        self.seq = 0
        self.run_tag = secrets.token_hex(4)  # messages are unique across runs sharing nothing else
        self.admin = nacl.signing.SigningKey.generate()
        self.evm_agent = nacl.signing.SigningKey.generate()
        self.sol_agent = nacl.signing.SigningKey.generate()
        self.identities: dict[int, bytes] = {}
        self.ledgers: dict[int, list[bytes]] = {}
        self.started = time.time()
        self.phases: list[dict] = []
        self.start_retries: list[str] = []  # committee starts that failed and were tried again
        self.state_root: Path | None = None  # the parties' state directories, once the committee is set up
        self.share_done = 1.0  # the share of the run's goals due by the end of the current phase

    # ------------------------------------------------------------------------------------------------ running
    def run(self) -> dict:
        cfg = self.cfg
        root = Path(cfg.state_dir) if cfg.state_dir else Path(tempfile.mkdtemp(prefix="mpc-soak-"))
        plan = [("clean", 1 - cfg.rpc_share - cfg.final_share), ("rpc", cfg.rpc_share), ("final", cfg.final_share)]
        plan = [(name, share) for name, share in plan if share > 0]
        self.log(f"soak: seed {cfg.seed}, target {cfg.signatures} signatures"
                 f"{f' or {cfg.duration_s:.0f} s' if cfg.duration_s else ''}, phases "
                 + ", ".join(f"{n} {s:.0%}" for n, s in plan) + f", state {root}")
        self.log("fault schedule (first 12 of the seeded draw; each waits for the previous one's recovery): "
                 + "; ".join(self._describe(f) for f in self._preview(12)))
        credentials = None
        done_share = 0.0
        try:
            for i, (name, share) in enumerate(plan):
                done_share += share
                self.share_done = done_share
                sig_goal = round(cfg.signatures * done_share)
                time_goal = None if cfg.duration_s is None else self.started + cfg.duration_s * done_share
                if i > 0:
                    self._count_fault("committee_restart", {"to": name})
                credentials = self._phase(name, root, credentials, sig_goal, time_goal, last=i == len(plan) - 1)
        finally:
            if cfg.state_dir is None:
                shutil.rmtree(root, ignore_errors=True)
        return self.report

    def _phase(self, name: str, root: Path, credentials, sig_goal: int, time_goal: float | None, last: bool):
        cfg = self.cfg
        self.phase = name
        env = {}
        if name == "rpc":
            env["RAY_testing_rpc_failure"] = json.dumps({"CoreWorkerService.grpc_client.PushTask": {
                "num_failures": -1, "req_failure_prob": cfg.rpc_failure_pct, "resp_failure_prob": cfg.rpc_failure_pct}})
            env["RAY_testing_asio_delay_us"] = f"CoreWorkerService.grpc_client.PushTask=0:{cfg.rpc_delay_us}"
        os.environ.update(env)  # read by every Ray process this phase starts, this driver's included
        t_phase = time.time()
        n_phase = len(self.sigs)
        try:
            for attempt in range(1, 6):  # the committee's start itself may meet an injected failure
                try:
                    # a first start that failed half way left stores with principals: start the next one afresh
                    state = self.state_root or root / f"committee-{attempt}"
                    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min",
                                               state_dir=str(state), pool_depth=cfg.pool_depth,
                                               credentials=credentials) as mpc:
                        credentials = mpc.credentials
                        if not self.keys:
                            self._setup(mpc)
                            self.state_root = state
                        else:
                            self._wait_for_keys(mpc)
                        self.log(f"[{self._t()}] phase {name}: committee up (attempt {attempt})")
                        self._run_phase(mpc, sig_goal, time_goal)
                        self.rpc_injected.update(_count_rpc_injections())
                        if last:
                            self._collect_live(mpc)
                    break
                except Exception as exc:  # noqa: BLE001 - a failed start is retried, a failure once signing ran raised
                    # Ray's own start times out on a loaded machine (a raylet not up within 30 s), and under RPC
                    # chaos a setup call may fail
                    if attempt == 5 or len(self.sigs) > n_phase:
                        raise
                    self.log(f"[{self._t()}] phase {name}: committee start failed ({type(exc).__name__}: "
                             f"{str(exc)[:200]}), again")
                    self.start_retries.append(f"{name}: {type(exc).__name__}")
        finally:
            for k in env:
                os.environ.pop(k, None)
        self.phases.append({"phase": name, "signatures": len(self.sigs) - n_phase,
                            "seconds": round(time.time() - t_phase, 1)})
        if last:
            self.report = self._check(self.state_root)
        return credentials

    def _setup(self, mpc) -> None:
        self.keys = {"ecdsa": mpc.create_key("ecdsa-secp256k1"), "ed25519": mpc.create_key("eddsa-ed25519"),
                     "bip340": mpc.create_key("schnorr-bip340")}
        mpc.bootstrap_principals(PrincipalRegistry(principals=(
            Principal.from_signing_key("soak-admin", "admin", self.admin),
            Principal.from_signing_key("evm-bot", "agent", self.evm_agent),
            Principal.from_signing_key("sol-bot", "agent", self.sol_agent))))
        self.evm_policy = Policy(
            key_id=self.keys["ecdsa"].key_id, principal_id="evm-bot", allowed_chains=(BASE,),
            allowed_tx_types=(TxType.ERC20_TRANSFER,), recipient_allowlist=(ALICE, BOB),
            asset_limits=(AssetLimit(asset=USDC_ASSET, per_tx=EVM_PER_TX,
                                     windows=(WindowCap(window_s=EVM_WINDOW_S, max_amount=EVM_WINDOW_CAP),)),
                          AssetLimit(asset=ETH_ASSET)),  # fees: allowed, uncapped
            rate_limits=(RateLimit(window_s=EVM_RATE_WINDOW_S, max_requests=EVM_RATE_MAX),))
        self.sol_policy = Policy(
            key_id=self.keys["ed25519"].key_id, principal_id="sol-bot", allowed_chains=(SOLANA,),
            allowed_tx_types=(TxType.SOLANA_TRANSFER,), recipient_allowlist=(str(SOL_FRIEND),),
            asset_limits=(AssetLimit(asset=native_asset(SOLANA), per_tx=SOL_PER_TX,
                                     windows=(WindowCap(window_s=SOL_WINDOW_S, max_amount=SOL_WINDOW_CAP),)),))
        for policy in (self.evm_policy, self.sol_policy):
            mpc.set_policy(sign_request(self.admin, principal_id="soak-admin", kind="set_policy", format="json",
                                        body=policy.to_bytes(), key_id=policy.key_id, now=time.time()))
        for p in (1, 2, 3):
            self.identities[p] = bytes(_retry(lambda p=p: ray.get(
                ray.get_actor(HOLDER_NAME.format(party=p), namespace=NAMESPACE).public_identity.remote(),
                timeout=30)).verify_key)
        mpc.wait_for_pools(self.keys["ecdsa"].key_id, 4, timeout=600)

    def _wait_for_keys(self, mpc) -> None:
        """A restarted committee's coordinator adopts the keys from the holders' views."""
        want = {k.key_id for k in self.keys.values()}
        _retry(lambda: want <= set(mpc.status()["keys"]) or _raise(TimeoutError("keys not adopted yet")),
               wait_s=300)

    def _run_phase(self, mpc, sig_goal: int, time_goal: float | None) -> None:
        """The workload in a thread; faults from this (main) thread: Ray starts a node's processes only from the
        main thread (it installs signal handlers)."""
        stop = threading.Event()
        failure: list[BaseException] = []

        def workload() -> None:
            try:
                self._workload(mpc, sig_goal, time_goal)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                failure.append(exc)
            finally:
                stop.set()

        worker = threading.Thread(target=workload, daemon=True, name="soak-workload")
        self.last_progress = time.monotonic()
        worker.start()
        self._faults(mpc, stop)
        worker.join()
        if failure:
            raise failure[0]
        # every party back before the phase ends (a fault's recovery may have been cut short)
        for p in (1, 2, 3):
            try:
                mpc.restart_node(p)
            except InvalidInput:  # it is running
                pass
            self._wait_holder(p)

    def _workload(self, mpc, sig_goal: int, time_goal: float | None) -> None:
        cfg = self.cfg
        handle = mpc.handle(timeout=cfg.timeout_s)
        handle.key_info(self.keys["ecdsa"].key_id)
        ecdsa_tokens = sol_tokens = 0.0
        last = time.monotonic()
        next_log = time.monotonic() + 30
        while ((len(self.sigs) < sig_goal or self._process_faults() < cfg.min_faults * self.share_done)
               and (time_goal is None or time.time() < time_goal)):
            now = time.monotonic()
            ecdsa_tokens = min(ecdsa_tokens + (now - last) * cfg.ecdsa_per_s, 8.0)
            sol_tokens = min(sol_tokens + (now - last) * cfg.solana_per_s, 8.0)
            last = now
            self._frost_batch(handle, "ed25519" if self.rng.random() < 0.5 else "bip340")
            while sol_tokens >= 1:
                sol_tokens -= 1
                self._agent_solana(handle)
            while ecdsa_tokens >= 1:
                ecdsa_tokens -= 1
                choice = self.rng.random()
                if choice < 0.3:
                    self._ecdsa_one_hop(mpc)
                elif choice < 0.6:
                    ecdsa_tokens -= 1
                    self._ecdsa_batch(handle)
                else:
                    self._agent_evm(handle)
            if time.monotonic() > next_log:
                next_log = time.monotonic() + 30
                self.log(f"[{self._t()}] {self.phase}: {len(self.sigs)} signatures "
                         f"({dict(Counter(s.kind for s in self.sigs))}), faults {dict(self.faults)}, "
                         f"errors {dict(self.errors)}, denials {dict(self.denials)}")

    # the workload: each call records a signature or the error that refused it ---------------------------------
    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _call(self, fn: Callable[[], Any]) -> Any:
        t0 = time.time()
        try:
            out = fn()
        except PolicyDenied as exc:
            self.denials[exc.rule] += 1
            self.samples.setdefault(f"PolicyDenied:{exc.rule}", str(exc)[:300])
            out = None
        except MpcError as exc:
            self.errors[type(exc).__name__] += 1
            self.samples.setdefault(type(exc).__name__, str(exc)[:300])
            if type(exc) is MpcError:  # the wrapper of an unexpected exception (client/raycall.py typed_error)
                self.untyped.append(f"MpcError: {str(exc)[:200]}")
            time.sleep(0.2)  # as a client would back off: no hot loop against a restarting actor
            return t0, None
        except Exception as exc:  # noqa: BLE001 - an untyped error is a finding: count it and go on
            self.errors[type(exc).__name__] += 1
            self.untyped.append(f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:200]}")
            time.sleep(0.2)
            return t0, None
        self.last_progress = time.monotonic()  # a signature or a policy decision: the committee is alive
        return t0, out

    def _frost_batch(self, handle, kind: str) -> None:
        key = self.keys[kind]
        msgs = [b"soak %s %s %d" % (self.run_tag.encode(), kind.encode(), self._next())
                for _ in range(self.cfg.frost_batch)]
        t0, out = self._call(lambda: handle.sign_many(key.key_id, msgs))
        if out is not None:
            t1 = time.time()
            for m, s in zip(msgs, out, strict=True):
                self.sigs.append(Sig(kind, key.public_key, m, s.to_bytes(), ("msg", hashlib.sha256(m).hexdigest()),
                                     t0, t1))

    def _ecdsa_digest(self) -> bytes:
        return hashlib.sha256(b"soak %s ecdsa %d" % (self.run_tag.encode(), self._next())).digest()

    def _ecdsa_one_hop(self, mpc) -> None:
        key, d = self.keys["ecdsa"], self._ecdsa_digest()
        t0, out = self._call(lambda: mpc.sign(key.key_id, d))  # one round to a leased presignature's signers
        if out is not None:
            self._ecdsa_record("ecdsa", d, out, ("msg", hashlib.sha256(d).hexdigest()), t0)

    def _ecdsa_batch(self, handle) -> None:
        key, ds = self.keys["ecdsa"], [self._ecdsa_digest(), self._ecdsa_digest()]
        t0, out = self._call(lambda: handle.sign_many(key.key_id, ds))
        if out is not None:
            for d, s in zip(ds, out, strict=True):
                self._ecdsa_record("ecdsa", d, s, ("msg", hashlib.sha256(d).hexdigest()), t0)

    def _ecdsa_record(self, kind: str, digest: bytes, sig, ref: tuple[str, str], t0: float,
                      spend: int | None = None) -> None:
        raw = sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big")
        self.sigs.append(Sig(kind, self.keys["ecdsa"].public_key, digest, raw, ref, t0, time.time(), spend))

    def _amount(self, per_tx: int) -> int:
        if self.rng.random() < self.cfg.over_cap_share:
            return per_tx + self.rng.randint(1, per_tx)  # above the per-transaction cap: every node must refuse
        return self.rng.randint(per_tx // 10, per_tx)

    def _agent_evm(self, handle) -> None:
        amount = self._amount(EVM_PER_TX)
        body = unsigned_bytes(eip1559(data=erc20_call("a9059cbb", self.rng.choice((ALICE, BOB)), amount),
                                      nonce=self._next()))
        req = sign_request(self.evm_agent, principal_id="evm-bot", kind="sign", format="evm_tx", body=body,
                           key_id=self.keys["ecdsa"].key_id, chain=BASE, now=time.time())
        t0, out = self._call(lambda: handle.sign_request(req))  # one hop with a leased presignature, else coordinator
        if out is not None:
            self.over_cap_signed += amount > EVM_PER_TX
            self._ecdsa_record("agent_evm", keccak(body), out, ("req", req.digest().hex()), t0, amount)

    def _agent_solana(self, handle) -> None:
        key = self.keys["ed25519"]
        sender = Pubkey(key.public_key)
        amount = self._amount(SOL_PER_TX - SOL_FEE)
        msg = bytes(Message.new_with_blockhash([transfer(TransferParams(
            from_pubkey=sender, to_pubkey=SOL_FRIEND, lamports=amount))], sender, Hash(secrets.token_bytes(32))))
        req = sign_request(self.sol_agent, principal_id="sol-bot", kind="sign", format="solana_tx", body=msg,
                           key_id=key.key_id, chain=SOLANA, now=time.time())
        t0, out = self._call(lambda: handle.sign_request(req))
        if out is not None:
            self.over_cap_signed += amount + SOL_FEE > SOL_PER_TX
            self.sigs.append(Sig("agent_solana", key.public_key, msg, out.to_bytes(), ("req", req.digest().hex()),
                                 t0, time.time(), amount + SOL_FEE))

    # faults ------------------------------------------------------------------------------------------------
    def _draw(self, rng: random.Random, bag: list[str]) -> dict:
        """The next fault: its kind from a shuffled bag of every kind (so each comes once in every four), its party,
        the gap before it (exponential, after the previous one recovered) and a removed node's time away."""
        if not bag:
            bag.extend(rng.sample(PROCESS_FAULTS, len(PROCESS_FAULTS)))
        return {"gap_s": round(rng.expovariate(1 / self.cfg.fault_every_s), 1), "fault": bag.pop(),
                "party": rng.randint(1, 3), "down_s": round(rng.uniform(*self.cfg.node_down_s), 1)}

    def _preview(self, n: int) -> list[dict]:
        rng, bag = random.Random(self.cfg.seed * 7919 + 1), []
        return [self._draw(rng, bag) for _ in range(n)]

    @staticmethod
    def _describe(f: dict) -> str:
        what = {"node_kill": f"node of party {f['party']} removed for {f['down_s']} s",
                "holder_kill": f"holder {f['party']} killed", "worker_kill": f"presign worker {f['party']} killed",
                "coordinator_kill": "coordinator killed"}[f["fault"]]
        return f"+{f['gap_s']} s {what}"

    def _faults(self, mpc, stop: threading.Event) -> None:
        while not stop.is_set():
            f = self._draw(self.fault_rng, self.fault_bag)
            deadline = time.monotonic() + f["gap_s"]
            while time.monotonic() < deadline:
                if stop.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
                    return
                self._watchdog()
            self.log(f"[{self._t()}] fault: {self._describe(f)}")
            p = f["party"]
            try:
                if f["fault"] == "node_kill":
                    mpc.kill_node(p)
                    self._count_fault("node_kill", f)
                    stop.wait(f["down_s"])
                    mpc.restart_node(p)
                    self._wait_holder(p)
                elif f["fault"] == "holder_kill":
                    ray.kill(_retry(lambda: ray.get_actor(HOLDER_NAME.format(party=p), namespace=NAMESPACE)),
                             no_restart=False)
                    self._count_fault("holder_kill", f)
                    self._wait_holder(p)
                elif f["fault"] == "worker_kill":
                    ray.kill(_retry(lambda: ray.get_actor(WORKER_NAME.format(party=p, worker=0),
                                                          namespace=NAMESPACE)), no_restart=False)
                    self._count_fault("worker_kill", f)
                else:
                    ray.kill(_retry(lambda: ray.get_actor(COORDINATOR_NAME, namespace=NAMESPACE)), no_restart=False)
                    self._count_fault("coordinator_kill", f)
                    self._wait_for_keys(mpc)
            except Exception as exc:  # noqa: BLE001 - a fault that could not be injected or recovered is reported
                self.recovery_timeouts += 1
                self.log(f"[{self._t()}] fault {f['fault']} did not complete: {type(exc).__name__}: {exc}")

    def _process_faults(self) -> int:
        return sum(self.faults[k] for k in PROCESS_FAULTS)

    def _count_fault(self, kind: str, detail: dict) -> None:
        self.faults[kind] += 1
        self.fault_log.append({"t": round(time.time() - self.started, 1), "phase": self.phase, "fault": kind,
                               **{k: v for k, v in detail.items() if k != "gap_s"}})

    def _wait_holder(self, party: int) -> None:
        _retry(lambda: ray.get(ray.get_actor(HOLDER_NAME.format(party=party), namespace=NAMESPACE).ping.remote(),
                               timeout=30), wait_s=180)

    def _watchdog(self) -> None:
        """A hang is a finding too: report where every thread is, and stop."""
        if time.monotonic() - self.last_progress > self.cfg.stall_s:
            self.log(f"[{self._t()}] STALL: no signature or policy decision for {self.cfg.stall_s:.0f} s; "
                     f"failed requests {dict(self.errors)}, first messages {self.samples}")
            import faulthandler

            faulthandler.dump_traceback(all_threads=True)
            os._exit(3)

    def _t(self) -> str:
        return f"{time.time() - self.started:7.1f}s"

    # checks ------------------------------------------------------------------------------------------------
    def _collect_live(self, mpc) -> None:
        """Each holder's consumed-id ledger through its public entry point (with what it replayed from its journal)."""
        time.sleep(2)  # ledgers are flushed right after each signature, off the signing path
        for p in (1, 2, 3):
            holder = ray.get_actor(HOLDER_NAME.format(party=p), namespace=NAMESPACE)
            self.ledgers[p] = _retry(lambda h=holder: ray.get(h.consumed_ids.remote(), timeout=60))

    def _check(self, root: Path) -> dict:
        problems: list[str] = []
        wrong = verify_all(self.sigs, problems)
        reuses: Counter[str] = Counter(dict.fromkeys(("id_consumed_twice_in_audit", "frost_nonce_on_two_holders"), 0))
        losses: Counter[str] = Counter(dict.fromkeys(("signature_without_audit_records", "audit_chain_broken",
                                                      "consumed_id_not_in_ledger"), 0))
        # nonce points: a repeat means a presignature or nonce was used twice
        reuses.update(nonce_point_repeats(self.sigs))
        # audit chains, and what each holder's records say it consumed and signed
        frost_keys = {self.keys["ed25519"].key_id, self.keys["bip340"].key_id}
        signed_on: dict[tuple[str, str], set[int]] = defaultdict(set)
        uses: dict[bytes, list[tuple[int, tuple[str, str]]]] = defaultdict(list)
        frost_ids: set[bytes] = set()
        audit = {}
        for p in (1, 2, 3):
            path = root / f"party-{p}" / "audit.jsonl"
            rep = verify_chain(path, self.identities[p])
            audit[p] = {"ok": rep.ok, "records": rep.records, "problem": rep.problem}
            if not rep.ok:
                losses["audit_chain_broken"] += 1
                problems.append(f"audit chain of party {p}: {rep.problem} at {rep.first_break_index}")
            for rec in iter_records(path):
                if rec.get("decision") != "allow" or rec.get("kind") != "sign":
                    continue
                intent = rec.get("intent") or {}
                frost = rec.get("key_id") in frost_keys
                if intent.get("type") == "raw_batch":
                    ids = intent.get("nonce_ids" if frost else "presignature_ids") or []
                    for (_, h), i in zip(intent.get("signed", []), ids, strict=True):
                        signed_on[("msg", h)].add(p)
                        uses[bytes.fromhex(i)].append((p, ("msg", h)))
                        if frost:
                            frost_ids.add(bytes.fromhex(i))
                elif rec.get("presignature_id"):
                    ref = ("req", rec["request_digest"])
                    signed_on[ref].add(p)
                    uses[bytes.fromhex(rec["presignature_id"])].append((p, ref))
                    if frost:
                        frost_ids.add(bytes.fromhex(rec["presignature_id"]))
        for id_, where in uses.items():
            if len({ref for _, ref in where}) > 1 or len({p for p, _ in where}) < len(where):
                reuses["id_consumed_twice_in_audit"] += 1
                problems.append(f"id {id_.hex()[:16]}.. consumed by {where}")
            if id_ in frost_ids and len({p for p, _ in where}) > 1:
                reuses["frost_nonce_on_two_holders"] += 1
        holders_of: Counter[bytes] = Counter()
        for p, ids in self.ledgers.items():
            reuses["ledger_duplicate"] += len(ids) - len(set(ids))
            have = set(ids)
            holders_of.update(i for i in have if i in frost_ids)
            missing = [i for i, w in uses.items() if any(q == p for q, _ in w) and i not in have]
            losses["consumed_id_not_in_ledger"] += len(missing)
            if missing:
                problems.append(f"party {p}: {len(missing)} ids its audit records consumed are not in its ledger")
        reuses["frost_nonce_in_two_ledgers"] = sum(1 for n in holders_of.values() if n > 1)
        for s in self.sigs:
            if len(signed_on.get(s.ref, ())) < 2:
                losses["signature_without_audit_records"] += 1
                if losses["signature_without_audit_records"] <= 5:
                    problems.append(f"{s.kind} signature {s.ref} has allow records on "
                                    f"{sorted(signed_on.get(s.ref, ()))} only")
        caps = self._check_caps(problems)
        untyped = len(self.untyped)
        elapsed = time.time() - self.started
        must_be_zero = {"reuses": sum(reuses.values()), "losses": sum(losses.values()), "wrong_signatures": wrong,
                        "cap_violations": sum(v for v in caps.values() if isinstance(v, int)),
                        "untyped_errors": untyped}
        return {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                        "ray": ray.__version__, "load_1m_at_end": round(os.getloadavg()[0], 1)},
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
            "config": {k: v for k, v in dataclasses.asdict(self.cfg).items() if k != "state_dir"},
            "duration_s": round(elapsed, 1),
            "signatures": {k: sum(1 for s in self.sigs if s.kind == k) for k in KINDS},
            "signatures_total": len(self.sigs),
            "signatures_per_s": round(len(self.sigs) / elapsed, 2),
            "phases": self.phases,
            "faults": dict(self.faults),
            "faults_total": sum(self.faults.values()),
            "rpc_failures_injected": dict(self.rpc_injected),
            "faults_not_completed": self.recovery_timeouts,
            "committee_start_retries": self.start_retries,
            "failed_requests": dict(self.errors),
            "policy_denials": dict(self.denials),
            "untyped": self.untyped[:20],
            "error_samples": self.samples,
            "reuses": dict(reuses), "losses": dict(losses), "cap_checks": caps,
            "audit": audit, "ledger_ids": {p: len(v) for p, v in self.ledgers.items()},
            "must_be_zero": must_be_zero, "ok": not any(must_be_zero.values()),
            "problems": problems[:40], "fault_log": self.fault_log,
        }

    def _check_caps(self, problems: list[str]) -> dict:
        out = {"per_tx": self.over_cap_signed}
        for kind, window_s, cap, what in (("agent_evm", EVM_WINDOW_S, EVM_WINDOW_CAP, "spend"),
                                          ("agent_solana", SOL_WINDOW_S, SOL_WINDOW_CAP, "spend"),
                                          ("agent_evm", EVM_RATE_WINDOW_S, EVM_RATE_MAX, "count")):
            worst, n_bad = worst_window([s for s in self.sigs if s.kind == kind], window_s,
                                         (lambda s: s.spend) if what == "spend" else (lambda s: 1), cap)
            out[f"{kind}_{what}_{window_s}s_windows_over"] = n_bad
            out.setdefault("worst_window", {})[f"{kind}_{what}"] = f"{worst} of {cap}"
            if n_bad:
                problems.append(f"{kind}: {n_bad} windows of {window_s} s over the {what} cap {cap} (worst {worst})")
        return {k: v for k, v in out.items() if k != "worst_window"} | {"worst_window": out["worst_window"]}


def nonce_point_repeats(sigs: list[Sig]) -> dict[str, int]:
    """Repeated ECDSA r / FROST R per scheme (the first 32 bytes of each signature): each repeat is a reuse."""
    out = {}
    for kinds, name in ((("ecdsa", "agent_evm"), "ecdsa_r"), (("ed25519", "agent_solana"), "ed25519_R"),
                        (("bip340",), "bip340_R")):
        seen = Counter(s.signature[:32] for s in sigs if s.kind in kinds)
        out[name] = sum(n - 1 for n in seen.values() if n > 1)
    return out


def worst_window(sigs: list[Sig], window_s: float, weight: Callable[[Sig], int], cap: int) -> tuple[int, int]:
    """(largest total, windows over `cap`) over the windows [t0_i, t0_i + window_s] of the signatures' send times,
    counting a signature only when its whole send-to-answer interval is inside the window."""
    sigs = sorted(sigs, key=lambda s: s.t0)
    starts = [s.t0 for s in sigs]
    worst = bad = 0
    for i, s in enumerate(sigs):
        end = s.t0 + window_s
        hi = bisect.bisect_right(starts, end)
        total = sum(weight(x) for x in sigs[i:hi] if x.t1 <= end)
        worst = max(worst, total)
        bad += total > cap
    return worst, bad


def verify_all(sigs: list[Sig], problems: list[str]) -> int:
    """Signatures that do not verify under an independent library, against what this script computed itself."""
    wrong = 0
    for s in sigs:
        try:
            if s.kind in ("ecdsa", "agent_evm"):
                r, sv = int.from_bytes(s.signature[:32], "big"), int.from_bytes(s.signature[32:], "big")
                der = cdata_to_der(deserialize_compact(s.signature))
                ok = 0 < r < SECP256K1_N and 0 < sv <= SECP256K1_N // 2 and coincurve.PublicKey(s.public_key).verify(
                    der, s.message, hasher=None)
            elif s.kind in ("ed25519", "agent_solana"):
                nacl.signing.VerifyKey(s.public_key).verify(s.message, s.signature)
                ok = True
            else:
                ok = coincurve.PublicKeyXOnly(s.public_key).verify(s.signature, s.message)
        except (nacl.exceptions.BadSignatureError, ValueError):
            ok = False
        if not ok:
            wrong += 1
            if wrong <= 5:
                problems.append(f"{s.kind} signature for {s.ref} does not verify")
    return wrong


def _count_rpc_injections() -> Counter[str]:
    """The failures Ray's RPC chaos injected in this cluster's processes, from their logs (one line each)."""
    out: Counter[str] = Counter()
    try:
        session = ray._private.worker._global_node.get_session_dir_path()  # no public accessor in Ray 2.60
    except AttributeError:
        return out
    pattern = re.compile(rb"Inject RPC (request|response) failure(?: while request in flight)? for (\S+)")
    for path in glob.glob(os.path.join(session, "logs", "*")):
        try:
            with open(path, "rb") as f:
                for m in pattern.finditer(f.read()):
                    out[f"{m.group(1).decode()}:{m.group(2).decode().rsplit('.', 1)[-1]}"] += 1
        except OSError:
            continue
    return out


def _raise(exc: BaseException):
    raise exc


def _retry(fn: Callable[[], Any], wait_s: float = 120.0) -> Any:
    """`fn()` until it succeeds: the harness's own calls meet the same faults as the workload."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return fn()
        except Exception:  # noqa: BLE001 - retried until the deadline, then raised
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def print_report(rep: dict, log: Callable[[str], None] = print) -> None:
    log("")
    log(f"soak {rep['date']}, {rep['machine']['cpu']}, {rep['machine']['cores']} cores, "
        f"{rep['duration_s']:.0f} s: {'OK' if rep['ok'] else 'FAILED'}")
    log(f"  signatures: {rep['signatures_total']} ({rep['signatures_per_s']}/s) {rep['signatures']}")
    log(f"  faults: {rep['faults_total']} {rep['faults']}; Ray RPC failures injected: {rep['rpc_failures_injected']}")
    log(f"  failed requests by error type: {rep['failed_requests']}; policy denials: {rep['policy_denials']}")
    log(f"  must be 0: {rep['must_be_zero']}")
    log(f"  reuses {rep['reuses']}; losses {rep['losses']}; caps {rep['cap_checks']}")
    for line in rep["problems"]:
        log(f"  problem: {line}")
    for line in rep["untyped"]:
        log(f"  untyped: {line}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = SoakConfig()
    ap.add_argument("--signatures", type=int, default=d.signatures)
    ap.add_argument("--min-faults", type=int, default=d.min_faults, help="go on until this many kills too")
    ap.add_argument("--duration", type=float, default=None, help="seconds (stops at whichever limit comes first)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--fault-every", type=float, default=d.fault_every_s, help="mean seconds between faults")
    ap.add_argument("--frost-batch", type=int, default=d.frost_batch)
    ap.add_argument("--ecdsa-per-s", type=float, default=d.ecdsa_per_s)
    ap.add_argument("--solana-per-s", type=float, default=d.solana_per_s)
    ap.add_argument("--rpc-share", type=float, default=d.rpc_share)
    ap.add_argument("--final-share", type=float, default=d.final_share)
    ap.add_argument("--rpc-failure-pct", type=int, default=d.rpc_failure_pct)
    ap.add_argument("--rpc-delay-us", type=int, default=d.rpc_delay_us)
    ap.add_argument("--state-dir", default=None, help="keep the parties' stores and audit logs here")
    ap.add_argument("--json", default=None, help="report path (default benchmarks/results/soak-<date>.json)")
    a = ap.parse_args(argv)
    cfg = SoakConfig(signatures=a.signatures, min_faults=a.min_faults, duration_s=a.duration, seed=a.seed,
                     fault_every_s=a.fault_every,
                     frost_batch=a.frost_batch, ecdsa_per_s=a.ecdsa_per_s, solana_per_s=a.solana_per_s,
                     rpc_share=a.rpc_share, final_share=a.final_share, rpc_failure_pct=a.rpc_failure_pct,
                     rpc_delay_us=a.rpc_delay_us, state_dir=a.state_dir)
    rep = Soak(cfg, log=lambda s: print(s, flush=True)).run()
    print_report(rep, lambda s: print(s, flush=True))
    out = Path(a.json) if a.json else ROOT / "benchmarks" / "results" / f"soak-{rep['date'][:10]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rep, indent=1, default=str) + "\n")
    print(f"report: {out}", flush=True)
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
