'use strict';
// gen(i) is the i-th test message; gen in node_test.go builds the same
// values in Go. Message 5000 is the 1 MiB one.
function gen(i) {
  if (i === 5000) return { big: 'é€😀x'.repeat(104858) };
  switch (i % 5) {
    case 0: return `msg-${i}-é€😀\u2028"\\\n\t`;
    case 1: return i * 0.5 - 100;
    case 2: return { i, arr: [i, 'x', null, true, { deep: { deeper: [i, -i] } }], s: 'ü中文' };
    case 3: return [i, -i, '中文', false, null];
    default: return i % 2 === 0 ? null : true;
  }
}
module.exports = { gen };
