'use strict';
// A Node.js child forked by childproc's Go tests. argv[2] is the mode.
const net = require('net');
const { gen } = require('./gen.cjs');

const mode = process.argv[2];
let selfDisconnect = false;

// A disconnect we did not ask for is reported through the exit code, so
// the Go parent can tell that Node noticed it.
process.on('disconnect', () => {
  if (!selfDisconnect && mode !== 'transcript') process.exit(42);
});

function isOp(m) {
  return m !== null && typeof m === 'object' && !Array.isArray(m) && typeof m.op === 'string';
}

const modes = {
  // Echo every message; obey ops.
  echo() {
    process.on('message', (m) => {
      if (!isOp(m)) return process.send(m);
      switch (m.op) {
        case 'generate':
          for (let i = 0; i < m.n; i++) process.send(gen(i));
          process.send({ done: m.n });
          break;
        case 'disconnect':
          // Stay alive on stdin after disconnecting (gotcha 9: defer it).
          process.stdin.resume();
          process.stdin.on('end', () => process.exit(0));
          setImmediate(() => { selfDisconnect = true; process.disconnect(); });
          break;
        case 'exit':
          process.exit(m.code);
          break;
        case 'big':
          process.send('x'.repeat(m.n));
          break;
        default:
          process.send(m);
      }
    });
  },

  // Send the values of docs/NODE-IPC.md §7.1, then disconnect from the
  // last callback so nothing is cut.
  vectors() {
    const values = [
      { hello: 'world', n: 1 },
      'plain string',
      42,
      [1, undefined, null, NaN, Infinity, -0, 1.5],
      { unicode: 'é€😀', ls: '\u2028', nl: 'a\nb', q: '"\\', ctl: '\u0001', lone: '\ud800' },
      { buf: Buffer.from('hi'), date: new Date(0), map: new Map([[1, 2]]), set: new Set([1]), re: /x/g, err: new Error('boom') },
      null,
      true,
      { cmd: 'NODE_CUSTOM', payload: 1 },
    ];
    values.forEach((v, i) => process.send(v, (err) => {
      if (err) throw err;
      if (i === values.length - 1) { selfDisconnect = true; process.disconnect(); }
    }));
  },

  // The transcript of §7.3: record what arrives, answer {please:'bye'},
  // and report everything on {final:true}.
  transcript() {
    const received = [];
    const internal = [];
    process.on('internalMessage', (m) => internal.push(m));
    process.on('message', (m) => {
      received.push(m);
      if (m && m.please === 'bye') process.send({ echo: 'bye' });
      if (m && m.final) process.send({ received, internal });
    });
  },

  // Send a net.Server handle; a Go parent must NACK it, which releases
  // the message Node queued behind it.
  handle() {
    const internal = [];
    process.on('internalMessage', (m) => internal.push(m.cmd));
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      process.send({ k: 'server' }, server);
      process.send({ after: 'handle' });
    });
    process.on('message', (m) => {
      if (isOp(m) && m.op === 'report') {
        server.close();
        process.send({ internal });
      }
    });
  },
};

if (!modes[mode]) {
  console.error('child.cjs: unknown mode', mode);
  process.exit(2);
}
modes[mode]();
