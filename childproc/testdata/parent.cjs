'use strict';
// A Node.js parent that starts a Go program (childproc's test binary in
// its "echo" helper mode) with an 'ipc' stdio entry, the form
// docs/NODE-IPC.md §1.5 recommends. Usage: node parent.cjs <scenario> <go-binary>
// It prints one JSON line {ok, events, detail} and exits 0 when ok.
const { spawn } = require('child_process');
const net = require('net');
const { isDeepStrictEqual } = require('util');
const { gen } = require('./gen.cjs');

const [scenario, goBin] = process.argv.slice(2);
const child = spawn(goBin, [], {
  stdio: ['pipe', 'inherit', 'inherit', 'ipc'],
  env: { ...process.env, CHILDPROC_TEST_HELPER: 'echo' },
});
const events = [];
const detail = {};
let ok = false;

function finish() {
  console.log(JSON.stringify({ ok, events, detail }));
  process.exitCode = ok ? 0 : 1;
}
function check(cond, what) {
  if (!cond) detail.failed = (detail.failed || []).concat(what);
  return cond;
}

let pending = 2; // 'exit' and 'disconnect'
let exitCode = null;
child.on('error', (e) => { detail.spawnError = e.message; finish(); });
child.on('disconnect', () => { events.push('disconnect'); if (--pending === 0) done(); });
child.on('exit', (code, signal) => {
  events.push(`exit ${code} ${signal}`);
  exitCode = code;
  if (--pending === 0) done();
});

let hello = null;
const scenarios = {
  // Exchange 1,000 messages and say goodbye.
  talk: {
    N: 1000,
    echoes: [],
    start() {
      for (let i = 0; i < this.N; i++) child.send(gen(i));
      child.send({ op: 'bye' });
    },
    message(m) { this.echoes.push(m); },
    end() {
      let same = this.echoes.length === this.N;
      for (let i = 0; same && i < this.N; i++) same = isDeepStrictEqual(this.echoes[i], gen(i));
      detail.echoes = this.echoes.length;
      return check(same, 'echoes') && check(detail.bye, 'bye') && check(exitCode === 0, 'exit 0');
    },
  },
  // The Go child disconnects and keeps running: Node sees 'disconnect'
  // while the child is alive, then ends its stdin to let it exit.
  'child-disconnect': {
    start() { child.send({ op: 'disconnect' }); },
    disconnect() {
      this.aliveAtDisconnect = child.exitCode === null && child.signalCode === null;
      child.stdin.end();
    },
    end() { return check(this.aliveAtDisconnect, 'alive at disconnect') && check(exitCode === 0, 'exit 0'); },
  },
  // Node disconnects: the Go child sees it and exits with status 7.
  'parent-disconnect': {
    start() { child.disconnect(); },
    end() { return check(exitCode === 7, 'exit 7 (the Go child saw the disconnect)'); },
  },
  // The Go child reports its and its grandchild's channel variables and fds.
  hygiene: {
    start() { child.send({ op: 'hygiene' }); },
    message(m) {
      detail.report = m;
      child.send({ op: 'bye' });
    },
    end() {
      const r = detail.report || {};
      const self = r.self || {};
      const g = r.grandchild || {};
      return check(r.err === '<nil>', 'report') &&
        check(self.channelFD === '' && self.channelMode === '', 'child env cleaned') &&
        check(!(self.sockets || [3]).includes(3), 'inherited fd 3 closed in the child') &&
        check(g.channelFD === '' && g.channelMode === '', 'grandchild env clean') &&
        check(Array.isArray(g.sockets) && g.sockets.length === 0, 'no socket in the grandchild') &&
        check(exitCode === 0, 'exit 0');
    },
  },
  // Node sends a handle: the Go child NACKs it, so the message queued
  // behind it is released and echoed; the handle's message never arrives.
  handle: {
    start() {
      const server = net.createServer();
      server.listen(0, '127.0.0.1', () => {
        child.send({ k: 'server' }, server);
        child.send({ after: 'handle' });
        this.server = server;
      });
      child.on('internalMessage', (m) => { (detail.internal = detail.internal || []).push(m.cmd); });
    },
    message(m) {
      (detail.got = detail.got || []).push(m);
      this.server.close();
      child.send({ op: 'bye' });
    },
    end() {
      return check(isDeepStrictEqual(detail.got, [{ after: 'handle' }]), 'only the queued message echoed') &&
        check(isDeepStrictEqual(detail.internal, ['NODE_HANDLE_NACK']), 'one NACK') &&
        check(exitCode === 0, 'exit 0');
    },
  },
  // The Go child tries to send a NODE_ message: Send refuses it, and Node
  // (which would crash on an unsolicited ACK) keeps running.
  internal: {
    start() { child.send({ op: 'internal' }); },
    message(m) { detail.reply = m; child.send({ op: 'bye' }); },
    end() { return check(isDeepStrictEqual(detail.reply, { refused: true }), 'refused') && check(exitCode === 0, 'exit 0'); },
  },
};

const sc = scenarios[scenario];
if (!sc) {
  console.error('parent.cjs: unknown scenario', scenario);
  process.exit(2);
}
child.on('message', (m) => {
  if (m && m.bye === true) { detail.bye = true; return; }
  if (hello === null) {
    hello = m;
    detail.hello = check(m && m.hello === 'from go child' && m.pid === child.pid, 'hello');
    sc.start();
    return;
  }
  if (sc.message) sc.message(m);
});
child.on('disconnect', () => { if (sc.disconnect) sc.disconnect(); });
function done() {
  ok = detail.hello === true && sc.end();
  finish();
}
