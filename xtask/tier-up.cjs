// Opens and closes one inspector session on Valle's isolate in a running `wrangler dev`,
// for the benchmarks. wrangler starts the runtime with an inspector, and until a session
// has attached and detached the worker's wasm runs about 1.7 times slower (POST
// /api/v1/score p50 4.2 ms before, 2.6 ms after, on this machine) while the no-I/O floor
// barely moves, which points at V8's code for the wasm module (compiled for debugging while
// an inspector may attach, optimized once a session has detached). A deployment has no
// inspector, so the benchmarks measure the state after one session.
//
// usage: node xtask/tier-up.cjs RUNTIME_PID [ISOLATE]   (ISOLATE: core:user:valle)
'use strict';
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'node_modules', 'ws'));
const { valleTarget } = require('./inspector.cjs');

(async () => {
  const isolate = process.argv[3] || 'core:user:valle';
  const url = await valleTarget(process.argv[2], isolate);
  if (!url) throw new Error(`no inspector target ${isolate}`);
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.on('open', resolve);
    socket.on('error', reject);
  });
  socket.close();
  await new Promise((resolve) => socket.on('close', resolve));
  process.exit(0);
})().catch((error) => {
  console.error(`tier-up: ${error.message}`);
  process.exit(1);
});
