'use strict';
// Used by ExampleFork: answers {n} with {doubled: 2n}.
process.on('message', (m) => process.send({ doubled: m.n * 2 }));
