// The peer in bench_throughput.py: Silence Laboratories' DKLs23 (@silencelaboratories/dkls-wasm-ll-node, Rust in
// WebAssembly), driven in one Node.js process like ours in one Python process: a 2-of-3 key generation once, then
// per signature a presignature by both signers (3 message rounds) and the last round on a fresh digest.
//
//   node benchmarks/dkls_wasm_peer.js PACKAGE_DIR COUNT      (prints "ready" after key generation, then waits
//                                                            for a line on stdin before it signs)
// PACKAGE_DIR is where `npm install @silencelaboratories/dkls-wasm-ll-node` ran. Prints one JSON object: CPU
// (process.cpuUsage, this process) and wall time per step, and every signature (r, s, digest, public key), which
// bench_throughput.py verifies with coincurve.
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const { createRequire } = require("module");

const [pkgDir, countArg] = process.argv.slice(2);
const dkls = createRequire(path.join(path.resolve(pkgDir), "index.js"))("@silencelaboratories/dkls-wasm-ll-node");
const { KeygenSession, Keyshare, SignSession } = dkls;
const count = parseInt(countArg, 10);

const others = (msgs, pid) => msgs.filter((m) => m.from_id !== pid).map((m) => m.clone());
const toMe = (msgs, pid) => msgs.filter((m) => m.to_id === pid).map((m) => m.clone());
const freeAll = (msgs) => msgs.forEach((m) => m.free());
const cpuUs = () => { const u = process.cpuUsage(); return u.user + u.system; };
const hex = (b) => Buffer.from(b).toString("hex");

function keygen(n, t) {
  const parties = Array.from({ length: n }, (_, i) => new KeygenSession(n, t, i));
  const msg1 = parties.map((p) => p.createFirstMessage());
  const msg2 = parties.flatMap((p, pid) => p.handleMessages(others(msg1, pid)));
  const commitments = parties.map((p) => p.calculateChainCodeCommitment());
  const msg3 = parties.flatMap((p, pid) => p.handleMessages(toMe(msg2, pid)));
  const msg4 = parties.flatMap((p, pid) => p.handleMessages(toMe(msg3, pid), commitments));
  parties.forEach((p, pid) => p.handleMessages(others(msg4, pid)));
  [msg1, msg2, msg3, msg4].forEach(freeAll);
  return parties.map((p) => p.keyshare().toBytes());
}

const k0 = cpuUs(), kw = process.hrtime.bigint();
const shares = keygen(3, 2);
const keygenCpu = cpuUs() - k0, keygenWall = Number(process.hrtime.bigint() - kw) / 1e9;
const publicKey = hex(Keyshare.fromBytes(shares[0]).publicKey);
// started together with other workers: say so, then wait for a line on stdin
process.stdout.write("ready\n");
fs.readSync(0, Buffer.alloc(16));

const sigs = [];
const w0 = process.hrtime.bigint(), c0 = cpuUs();
let presignCpu = 0, onlineCpu = 0;
for (let i = 0; i < count; i++) {
  const digest = crypto.createHash("sha256").update(`wasm ${i}`).digest();
  let t = cpuUs();
  // signers 0 and 1 (a new SignSession consumes its key share, so each signature reopens them from bytes)
  const parties = [0, 1].map((j) => new SignSession(Keyshare.fromBytes(shares[j]), "m"));
  const msg1 = parties.map((p) => p.createFirstMessage());
  const msg2 = parties.flatMap((p, pid) => p.handleMessages(others(msg1, pid)));
  const msg3 = parties.flatMap((p, pid) => p.handleMessages(toMe(msg2, pid)));
  parties.forEach((p, pid) => p.handleMessages(toMe(msg3, pid)));
  [msg1, msg2, msg3].forEach(freeAll);
  presignCpu += cpuUs() - t;
  t = cpuUs();
  const last = parties.map((p) => p.lastMessage(digest));
  const out = parties.map((p, pid) => p.combine(others(last, pid)));
  freeAll(last);
  onlineCpu += cpuUs() - t;
  sigs.push({ digest: hex(digest), r: hex(out[0][0]), s: hex(out[0][1]) });
}
const wall = Number(process.hrtime.bigint() - w0) / 1e9;
console.log(JSON.stringify({
  version: require(path.join(path.resolve(pkgDir), "node_modules/@silencelaboratories/dkls-wasm-ll-node/package.json")).version,
  node: process.version, count, public_key: publicKey,
  keygen_cpu_s: keygenCpu / 1e6, keygen_wall_s: keygenWall,
  wall_s: wall, cpu_s: (cpuUs() - c0) / 1e6,
  presign_cpu_ms: presignCpu / 1e3 / count, online_cpu_ms: onlineCpu / 1e3 / count,
  signatures: sigs,
}));
