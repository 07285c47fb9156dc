// Node.js @procwire/core 1.5.0 parent driving the Go echoworker
// (direction A of the interop plan, docs/PROCWIRE.md §12.2).
//
// usage: node parent.mjs <echoworker path> [all|orphan]
//
// "all" runs every scenario and prints one JSON object per line:
//   {"name": <scenario>, "ok": <bool>, ...observations}
// then {"name":"done"}. The Go test (interop_test.go) asserts on them.
// "orphan" spawns one worker, prints {"name":"orphan","pid":N} and waits to
// be killed, so the Go test can check that the worker dies with its parent.
import { existsSync, readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { ModuleManager, Module } from "@procwire/core";
import { rawCodec } from "@procwire/codecs";

const [worker, mode = "all"] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const HB = { intervalMs: 50, timeoutMs: 500 };

// The echoworker's schema as the parent declares it.
function echoModule(name, { auth = false, heartbeat = null, executable } = {}) {
  return new Module(name)
    .executable(...(executable ?? [worker, []]), { env: { ECHOWORKER_TEST_VAR: "from-node" } })
    .method("echo")
    .method("echoRaw", { codec: rawCodec })
    .method("fail")
    .method("count", { response: "stream" })
    .method("slow", { cancellable: true, timeout: 10000 })
    .method("accept", { response: "ack" })
    .method("notify", { response: "none" })
    .method("getenv")
    .method("crash", { response: "none" })
    .event("progress")
    .event("notified")
    .spawnPolicy({ maxRetries: 0, auth, heartbeat });
}

// Instrument the manager: child processes and their exits, data-plane paths,
// $ping count and module errors, per module name.
const mgr = new ModuleManager();
const procs = {}, exits = {}, pipes = {}, pings = {}, errors = {};
const origSpawn = mgr._spawnProcess.bind(mgr);
mgr._spawnProcess = (m) => {
  const p = origSpawn(m);
  procs[m.name] = p;
  exits[m.name] = new Promise((resolve) => p.on("exit", (code, signal) => resolve({ code, signal })));
  return p;
};
const origConnect = mgr._connectDataChannel.bind(mgr);
mgr._connectDataChannel = (m, path, policy) => {
  pipes[m.name] = path;
  return origConnect(m, path, policy);
};
const origWrite = mgr._writeControlMessage.bind(mgr);
mgr._writeControlMessage = (m, msg) => {
  if (msg.includes('"$ping"')) pings[m.name] = (pings[m.name] ?? 0) + 1;
  return origWrite(m, msg);
};
mgr.on("module:error", (name, err) => (errors[name] ??= []).push(err.message));

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms); }),
  ]);
}

// check runs one scenario; fn returns {ok, ...observations}.
async function check(name, fn) {
  try {
    const r = await withTimeout(Promise.resolve().then(fn), 15000, name);
    out({ name, ...r });
  } catch (e) {
    out({ name, ok: false, error: String(e?.stack ?? e) });
  }
}

const nextEvent = (mod, ev, ms = 5000) =>
  withTimeout(new Promise((resolve) => { const off = mod.onEvent(ev, (d) => { off(); resolve(d); }); }), ms, `event ${ev}`);

const rssKiB = (pid) => { // Linux only; -1 elsewhere
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
};

async function collect(gen) {
  const got = [];
  for await (const c of gen) got.push(c);
  return got;
}

if (mode === "orphan") {
  const mod = echoModule("orphan");
  mgr.register(mod);
  await mgr.spawn("orphan");
  out({ name: "orphan", ok: true, pid: procs.orphan.pid });
  setInterval(() => {}, 1 << 30); // wait to be killed
} else {
  await runAll();
  out({ name: "done", ok: true });
  process.exit(0);
}

async function runAll() {
  const go = echoModule("go", { auth: true, heartbeat: HB });
  mgr.register(go);

  await check("spawn", async () => {
    const t = performance.now();
    await mgr.spawn("go");
    return { ok: go.state === "ready", state: go.state, spawnMs: Math.round(performance.now() - t), pipe: pipes.go };
  });

  await check("echo", async () => {
    const values = [
      { a: 1, b: "x", c: [1, 2, 3] }, null, true, 0, -33, 255, 65536, 2 ** 53 - 1, 1.5, -0.25,
      "", "zażółć 🎉", "a".repeat(300), [], {}, { nested: { list: [1, "two", { three: 3 }], ok: false } },
      { data: Buffer.from([1, 2, 3, 4]) }, Buffer.alloc(0), new Date(1718454645123), new Date(-1),
      { created: new Date("2024-01-15T10:30:00Z"), payload: Buffer.from([1, 2, 3]), name: "test" },
    ];
    const bad = [];
    for (const v of values) {
      const got = await go.send("echo", v);
      if (!isDeepStrictEqual(got, v)) bad.push({ sent: String(JSON.stringify(v)), got: String(JSON.stringify(got)) });
    }
    return { ok: bad.length === 0, n: values.length, bad };
  });

  await check("echoRaw", async () => {
    const bad = [];
    for (const v of [Buffer.from([0xde, 0xad, 0xbe, 0xef]), Buffer.alloc(0), Buffer.alloc(300000, 7)]) {
      const got = await go.send("echoRaw", v);
      if (!Buffer.isBuffer(got) || !got.equals(v)) bad.push({ len: v.length, gotLen: got?.length });
    }
    return { ok: bad.length === 0, bad };
  });

  await check("fail", async () => {
    try {
      await go.send("fail", { message: "boom" });
      return { ok: false, error: "no error" };
    } catch (e) {
      return { ok: e.name === "ProcwireError" && e.message === "boom", errName: e.name, message: e.message, data: e.data };
    }
  });

  await check("count", async () => {
    const five = await collect(go.stream("count", { n: 5 }));
    const zero = await collect(go.stream("count", { n: 0 }));
    const want = [0, 1, 2, 3, 4].map((i) => ({ i }));
    return { ok: isDeepStrictEqual(five, want) && zero.length === 0, five, zero };
  });

  await check("slow", async () => {
    const got = await go.send("slow", { ms: 20 });
    return { ok: isDeepStrictEqual(got, { slept: 20 }), got };
  });

  await check("abort", async () => {
    const progress = nextEvent(go, "progress");
    const ac = new AbortController();
    const t = performance.now();
    const p = go.send("slow", { ms: 5000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    let errName = "";
    try { await p; } catch (e) { errName = e.name; }
    const rejectMs = Math.round(performance.now() - t);
    const ev = await progress; // emitted by the Go handler when its context was cancelled
    const after = await go.send("echo", "still alive");
    return { ok: errName === "AbortError" && ev.aborted === true && ev.slept < 4000 && after === "still alive",
             errName, rejectMs, progress: ev };
  });

  await check("accept", async () => {
    const got = await go.send("accept", { job: 1 });
    return { ok: isDeepStrictEqual(got, { accepted: true }), got };
  });

  await check("notify", async () => {
    const ev = nextEvent(go, "notified");
    const input = { hello: "world", n: [1, 2] };
    const ret = await go.send("notify", input);
    const got = await ev;
    return { ok: ret === undefined && isDeepStrictEqual(got, input), got };
  });

  await check("getenv", async () => {
    const moduleName = await go.send("getenv", { name: "PROCWIRE_MODULE_NAME" });
    const custom = await go.send("getenv", { name: "ECHOWORKER_TEST_VAR" });
    const missing = await go.send("getenv", { name: "ECHOWORKER_NO_SUCH_VAR" });
    const token = await go.send("getenv", { name: "PROCWIRE_TOKEN" });
    return { ok: moduleName === "go" && custom === "from-node" && missing === null && /^[0-9a-f]{64}$/.test(token),
             moduleName, custom, missing, tokenLen: token?.length };
  });

  await check("heartbeat", async () => {
    const p0 = pings.go;
    await sleep(1000); // idle
    const idle = pings.go - p0;
    const p1 = pings.go;
    const deadline = performance.now() + 1000;
    let calls = 0, chunks = 0;
    while (performance.now() < deadline) { // under load
      const batch = [];
      for (let i = 0; i < 50; i++) batch.push(go.send("echo", { load: i, pad: "x".repeat(1000) }));
      batch.push(collect(go.stream("count", { n: 2000 })).then((c) => { chunks += c.length; }));
      await Promise.all(batch);
      calls += 50;
      await new Promise((r) => setImmediate(r)); // the load is on the worker, not on the parent's event loop
    }
    const loaded = pings.go - p1;
    const missed = (errors.go ?? []).filter((m) => m.includes("heartbeat"));
    // Each $ping after the first is only sent once the previous one got its $pong.
    return { ok: go.state === "ready" && missed.length === 0 && idle > 1 && loaded > 1,
             pingsIdle: idle, pingsUnderLoad: loaded, calls, chunks, errors: errors.go ?? [] };
  });

  await check("wrap", async () => {
    go._nextRequestId = 0xffffffff; // test hook: the private counter of ModuleCore
    const a = await go.send("echo", "wrap");
    const usedAfter = go._nextRequestId; // 1 was skipped to: 0xffffffff -> 1 -> 2
    const b = await go.send("echo", "after-wrap");
    return { ok: a === "wrap" && b === "after-wrap" && usedAfter === 1 && go._nextRequestId === 2, a, b };
  });

  await check("shutdown", async () => {
    const exit = exits.go;
    const t = performance.now();
    await mgr.shutdown("go");
    const shutdownMs = performance.now() - t;
    const { code, signal } = await exit;
    return { ok: code === 0 && signal === null && !existsSync(pipes.go) && go.state === "closed",
             shutdownMs: Math.round(shutdownMs * 10) / 10, code, signal, errors: errors.go ?? [] };
  });

  // The heavier scenarios run on a module without heartbeat, so that a
  // stall of the shared CI machine cannot cascade through them.
  const bulk = echoModule("bulk");
  mgr.register(bulk);

  await check("noauth", async () => {
    await mgr.spawn("bulk");
    const got = await bulk.send("echo", { plain: true });
    const token = await bulk.send("getenv", { name: "PROCWIRE_TOKEN" });
    return { ok: got.plain === true && token === null, token };
  });

  await check("concurrency", async () => {
    const n = 300;
    const calls = [];
    for (let i = 0; i < n; i++) {
      calls.push(i % 3 === 0 ? bulk.send("slow", { ms: (i * 7) % 20 }).then((r) => r.slept === (i * 7) % 20)
                             : bulk.send("echo", { i }).then((r) => r.i === i));
    }
    const res = await Promise.all(calls);
    return { ok: res.every(Boolean), n };
  });

  await check("backpressure", async () => {
    const pid = procs.bulk.pid;
    const n = 20000;
    const gen = bulk.stream("count", { n });
    const first = await gen.next();
    const before = rssKiB(pid);
    await sleep(300); // the consumer stalls: the parent stops reading, the worker must block
    const during = rssKiB(pid);
    let next = 1, inOrder = first.value.i === 0;
    for await (const c of gen) {
      if (c.i !== next++) inOrder = false;
      if (next % 1000 === 0) await new Promise((r) => setImmediate(r)); // let the parent's I/O run
    }
    return { ok: inOrder && next === n, chunks: next, rssKiBBefore: before, rssKiBStalled: during };
  });

  await check("bulkShutdown", async () => {
    await mgr.shutdown("bulk");
    const { code, signal } = await exits.bulk;
    return { ok: code === 0 && signal === null, code, signal };
  });

  await check("badauth", async () => {
    // The worker is started with a token that is not the one the parent sends.
    const mod = echoModule("badauth", { auth: true, executable: ["/bin/sh", ["-c", 'PROCWIRE_TOKEN=not-the-token exec "$0"', worker]] });
    mgr.register(mod);
    await mgr.spawn("badauth"); // resolves: the parent never waits for an answer to AUTH (§8.5, §13.7)
    let sendErr = "";
    try { await mod.send("echo", "should not be answered"); } catch (e) { sendErr = e.message; }
    const { code, signal } = await exits.badauth;
    const errs = errors.badauth ?? [];
    return { ok: sendErr !== "" && signal === "SIGKILL" && errs.some((m) => m.includes("lost its data channel")),
             sendErr, code, signal, errors: errs };
  });

  await check("crash", async () => {
    const mod = echoModule("crashy");
    mgr.register(mod);
    await mgr.spawn("crashy");
    const pending = mod.send("slow", { ms: 10000 }).then(() => "", (e) => e.message);
    await mod.send("crash", {});
    const pendingErr = await pending;
    const { code, signal } = await exits.crashy;
    await new Promise((r) => setImmediate(r)); // the manager handles the exit after us
    const errs = errors.crashy ?? [];
    return { ok: pendingErr !== "" && code === 3 && errs.some((m) => m.includes("code: 3")),
             pendingErr, code, signal, errors: errs, state: mod.state };
  });

  await mgr.shutdown();
}
