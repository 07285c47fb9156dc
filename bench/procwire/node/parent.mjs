// Node.js side of procwirebench: a @procwire/core 1.5.0 parent (the
// reference ModuleManager) measuring the workers it is given, with the same
// method, payloads and procedure as the Go host side
// (bench/procwire/cmd/procwirebench). The Go program runs it; it is not
// meant to be run by hand, but it can be:
//
//   node parent.mjs '<config JSON>'
//
// config: {
//   interop:  absolute path of procxy's interop/ (its node_modules holds the
//             pinned @procwire packages; they are resolved from there, so
//             this script needs no node_modules of its own),
//   targets:  [{name, command, args, node, env}] — the workers to measure,
//             in order; node: the worker runs on Node.js (also time
//             `node -e 0`); env: extra "KEY=value" strings for the worker,
//   spawns, latWarm, latCalls, tputWarmMs, tputMs, inflight, bigWarm,
//   bigCalls, idleCalls, idleMs — see measure() below
// }
//
// It prints one JSON object per target on stdout, then {"done": true}.
// Diagnostics go to stderr. Every child it starts is shut down (or waited
// for) before it exits; if this process dies, its workers see the end of
// their stdin and exit.
import { spawn as spawnChild } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";

const cfg = JSON.parse(process.argv[2]);
const req = createRequire(join(cfg.interop, "package.json"));
const load = (pkg) => import(pathToFileURL(req.resolve(pkg)).href);
const { ModuleManager, Module } = await load("@procwire/core");
const { rawCodec } = await load("@procwire/codecs");

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const now = () => performance.now(); // ms, sub-µs resolution

// memory returns VmRSS, RssAnon and RssFile of pid in KiB (-1 if unknown).
const memory = (pid) => {
  let s = "";
  try { s = readFileSync(`/proc/${pid}/status`, "utf8"); } catch {}
  const kib = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(s)?.[1] ?? -1);
  return { rss: kib("VmRSS"), anon: kib("RssAnon"), file: kib("RssFile") };
};

// Usage of a whole process, as in the Go program: this process's CPU time
// and context switches from getrusage (all threads, µs), the worker's from
// /proc (utime+stime in 10 ms ticks; context switches of its live
// threads); read and write system calls of both from /proc/<pid>/io.
const ioCalls = (pid) => {
  try {
    const s = readFileSync(`/proc/${pid}/io`, "utf8");
    return { syscr: Number(/^syscr:\s+(\d+)/m.exec(s)?.[1] ?? 0), syscw: Number(/^syscw:\s+(\d+)/m.exec(s)?.[1] ?? 0) };
  } catch {
    return { syscr: 0, syscw: 0 };
  }
};
const selfUsage = () => {
  const u = process.resourceUsage();
  return { cpuUs: u.userCPUTime + u.systemCPUTime, vcs: u.voluntaryContextSwitches, ics: u.involuntaryContextSwitches, ...ioCalls("self") };
};
const procUsage = (pid) => {
  const u = { cpuUs: 0, vcs: 0, ics: 0, ...ioCalls(pid) };
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = st.slice(st.lastIndexOf(")") + 1).trim().split(/\s+/);
    u.cpuUs = (Number(f[11]) + Number(f[12])) * 10000; // USER_HZ = 100
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const s = readFileSync(`/proc/${pid}/task/${t}/status`, "utf8");
      u.vcs += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
      u.ics += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    }
  } catch {}
  return u;
};
// perCall is what each side did per call between two usages (the Go
// program's perCall).
const perCall = (p0, p1, w0, w1, calls, wallMs) => {
  const n = Math.max(calls, 1);
  const side = (a, b) => ({
    cpuUs: (b.cpuUs - a.cpuUs) / n, vcs: (b.vcs - a.vcs) / n, ics: (b.ics - a.ics) / n,
    reads: (b.syscr - a.syscr) / n, writes: (b.syscw - a.syscw) / n,
  });
  return { parent: side(p0, p1), worker: side(w0, w1), cores: wallMs ? (p1.cpuUs - p0.cpuUs + w1.cpuUs - w0.cpuUs) / (wallMs * 1000) : 0 };
};

const B16 = Buffer.alloc(16, 0x5a);
const B1K = Buffer.alloc(1024);
for (let i = 0; i < B1K.length; i++) B1K[i] = i & 0xff;
const B10M = Buffer.alloc(10 << 20);
for (let i = 0; i < B10M.length; i += 4096) B10M[i] = (i >> 12) & 0xff;

const mgr = new ModuleManager();
mgr.on("module:error", (name, err) => process.stderr.write(`procwirebench/node: module ${name}: ${err?.message ?? err}\n`));
let seq = 0;

// The parent's view of the worker: only echoRaw is declared (a parent may
// declare a subset of the child's methods).
const envOf = (t) => Object.fromEntries((t.env ?? []).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));

function newModule(t) {
  const mod = new Module(`${t.name}-${++seq}`)
    .executable(t.command, t.args ?? [], { env: envOf(t) })
    .method("echoRaw", { codec: rawCodec })
    .spawnPolicy({ maxRetries: 0 });
  mgr.register(mod);
  return mod;
}

async function echo(mod, buf) {
  const got = await mod.send("echoRaw", buf);
  if (!Buffer.isBuffer(got) || got.length !== buf.length) {
    throw new Error(`echoRaw: sent ${buf.length} bytes, got ${Buffer.isBuffer(got) ? got.length + " bytes" : typeof got}`);
  }
  return got;
}

// bare starts the program and records when its first stdout line arrives
// and when it exits. Its stdin is /dev/null, so a Procwire worker starts
// up, prints $init, sees the end of stdin and exits 0.
function bare(command, args, env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    let line = -1;
    const p = spawnChild(command, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } });
    p.stdout.on("data", (d) => {
      if (line < 0 && d.includes(10)) line = now() - t0;
    });
    p.on("error", reject);
    p.on("exit", (code, signal) => {
      const exit = now() - t0;
      if (code !== 0) reject(new Error(`${command} ${args.join(" ")}: exit ${code} ${signal ?? ""}`));
      else resolve({ exit, line });
    });
  });
}

const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

async function measure(t) {
  const r = { name: t.name, spawnMs: [], readyMs: [], bareExitMs: [], bareLineMs: [], nodeE0Ms: [], rssKiB: [], anonKiB: [], fileKiB: [] };

  // Spawn → first call, interleaved with bare starts of the same program
  // (and of `node -e 0` for a Node worker). One untimed spawn first (page
  // cache, JIT).
  for (let i = -1; i < cfg.spawns; i++) {
    const b = await bare(t.command, t.args ?? [], envOf(t));
    const e0 = t.node ? await bare(process.execPath, ["-e", "0"]) : null;
    const mod = newModule(t);
    const t0 = now();
    await mgr.spawn(mod.name);
    const t1 = now();
    await echo(mod, B16);
    const t2 = now();
    for (let k = 1; k < cfg.idleCalls; k++) await echo(mod, B16);
    await sleep(cfg.idleMs);
    const mem = memory(mod.process.pid);
    await mgr.shutdown(mod.name);
    await mgr.unregister(mod.name);
    if (i < 0) continue;
    r.spawnMs.push(t2 - t0);
    r.readyMs.push(t1 - t0);
    r.bareExitMs.push(b.exit);
    r.bareLineMs.push(b.line);
    if (e0) r.nodeE0Ms.push(e0.exit);
    r.rssKiB.push(mem.rss);
    r.anonKiB.push(mem.anon);
    r.fileKiB.push(mem.file);
  }

  const mod = newModule(t);
  await mgr.spawn(mod.name);
  try {
    // 16 B sequential round trips, each timed.
    for (let i = 0; i < cfg.latWarm; i++) await echo(mod, B16);
    const lat = new Float64Array(cfg.latCalls);
    const pid = mod.process.pid;
    const p0 = selfUsage(), w0 = procUsage(pid);
    for (let i = 0; i < cfg.latCalls; i++) {
      const s = now();
      const got = await mod.send("echoRaw", B16);
      lat[i] = now() - s;
      if (got.length !== 16 || got[0] !== 0x5a || got[15] !== 0x5a) throw new Error("16 B echo mismatch");
    }
    r.lat = perCall(p0, selfUsage(), w0, procUsage(pid), cfg.latCalls, 0);
    lat.sort();
    r.p50us = pct(lat, 0.5) * 1000;
    r.p99us = pct(lat, 0.99) * 1000;

    // 1 KiB with `inflight` calls in flight: that many loops, each with one
    // call outstanding at a time, for tputMs after tputWarmMs.
    let calls = 0, counting = false, stop = false;
    const loop = async () => {
      while (!stop) {
        const got = await mod.send("echoRaw", B1K);
        if (got.length !== 1024 || got[1023] !== 0xff) throw new Error("1 KiB echo mismatch");
        if (counting) calls++;
      }
    };
    const loops = Promise.all(Array.from({ length: cfg.inflight }, loop)); // handled at once
    await sleep(cfg.tputWarmMs);
    counting = true;
    const ts = now();
    const tp0 = selfUsage(), tw0 = procUsage(pid);
    await sleep(cfg.tputMs);
    const tp1 = selfUsage(), tw1 = procUsage(pid);
    const te = now();
    counting = false;
    stop = true;
    await loops;
    r.callsPerSec = calls / ((te - ts) / 1000);
    r.tput = perCall(tp0, tp1, tw0, tw1, calls, te - ts);

    // 10 MiB sequential echoes.
    for (let i = 0; i < cfg.bigWarm; i++) await echo(mod, B10M);
    const bs = now();
    let last;
    for (let i = 0; i < cfg.bigCalls; i++) last = await echo(mod, B10M);
    const be = now();
    if (!last.equals(B10M)) throw new Error("10 MiB echo mismatch");
    r.gbps = (cfg.bigCalls * B10M.length) / ((be - bs) / 1000) / 1e9;
  } finally {
    await mgr.shutdown(mod.name);
    await mgr.unregister(mod.name);
  }
  return r;
}

try {
  for (const t of cfg.targets) out(await measure(t));
  out({ done: true });
} catch (e) {
  process.stderr.write(`procwirebench/node: ${e?.stack ?? e}\n`);
  await mgr.shutdown().catch(() => {});
  process.exitCode = 1;
}
