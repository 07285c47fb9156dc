// Procwire worker used by procxy's host interop tests (direction B: Go
// parent, Node child). It runs on the pinned @procwire/client 1.3.1 and has
// exactly the methods the tests expect, registered in this order (which
// fixes their ids: echo=1 … crash=9; events progress=1, notified=2), the
// same as the Go examples/echoworker:
//
//   echo     result  returns its input
//   echoRaw  result  raw codec: returns its input bytes
//   fail     result  {message} → error with that message
//   count    stream  {n} → n chunks {i}, then the end
//   slow     result  {ms} → waits ms → {slept: ms}; on abort it stops at
//                    once, answers nothing and emits "progress"
//                    {aborted: true, slept: <ms so far>}
//   accept   ack     → ack {accepted: true}
//   notify   none    emits "notified" with its input
//   getenv   result  {name} → the variable's value, or nil
//   crash    none    exits with status 3
//
// stdout is the control plane: diagnostics go to stderr. Set
// PROCXY_WORKER_NOISE=1 to print a plain text line on stdout and a line on
// stderr before start, which the parent must log and otherwise ignore.
import { Client } from "@procwire/client";
import { rawCodec } from "@procwire/codecs";

if (process.env.PROCXY_WORKER_NOISE === "1") {
  process.stdout.write("plain text on stdout before $init\n");
  process.stderr.write("a line on stderr before $init\n");
}

const client = new Client()
  .handle("echo", async (data, ctx) => {
    await ctx.respond(data);
  })
  .handle("echoRaw", async (data, ctx) => {
    await ctx.respond(data);
  }, { codec: rawCodec })
  .handle("fail", async (data) => {
    throw new Error(data?.message ?? "fail");
  })
  .handle("count", async (data, ctx) => {
    for (let i = 0; i < data.n && !ctx.aborted; i++) {
      await ctx.chunk({ i });
    }
    if (!ctx.aborted) await ctx.end();
  }, { response: "stream" })
  .handle("slow", async (data, ctx) => {
    const ms = data.ms;
    const start = Date.now();
    const aborted = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      ctx.onAbort(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (aborted) {
      await client.emitEvent("progress", { aborted: true, slept: Date.now() - start }).catch(() => {});
      return;
    }
    await ctx.respond({ slept: ms });
  }, { cancellable: true })
  .handle("accept", async (_data, ctx) => {
    await ctx.ack({ accepted: true });
  }, { response: "ack" })
  .handle("notify", async (data) => {
    await client.emitEvent("notified", data);
  }, { response: "none" })
  .handle("getenv", async (data, ctx) => {
    await ctx.respond(process.env[data.name] ?? null);
  })
  .handle("crash", async () => {
    process.stderr.write("crash: exiting with status 3\n");
    process.exit(3);
  }, { response: "none" })
  .event("progress")
  .event("notified");

await client.start();
