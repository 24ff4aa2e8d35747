// The memory Valle itself holds in a running `wrangler dev`, for `cargo xtask soak`:
// the wasm linear memory of the worker and of the KPI object (from /metrics), and the V8
// heap of Valle's isolate after a forced garbage collection (through the runtime's own
// inspector, found among the runtime process's listening sockets).
//
// usage: node xtask/soak-memory.cjs BASE_URL OFFICER_TOKEN RUNTIME_PID [--no-gc]
// prints one JSON line: {"wasm_worker_bytes":..,"wasm_kpi_object_bytes":..,"v8_used_bytes":..}
// (v8_used_bytes null and v8_error set when the inspector did not answer).
'use strict';
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'node_modules', 'ws'));
const { valleTarget } = require('./inspector.cjs');

const [baseUrl, token, pid] = process.argv.slice(2);

async function wasmMemory() {
  const response = await fetch(`${baseUrl}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await response.text();
  const gauge = (instance) => {
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`valle_wasm_memory_bytes{instance="${instance}"}`));
    const value = line ? Number(line.split(' ').pop()) : NaN;
    return Number.isFinite(value) ? value : null;
  };
  return { wasm_worker_bytes: gauge('worker'), wasm_kpi_object_bytes: gauge('kpi_object') };
}

// Waits for `reply`, sending a request now and then: workerd handles inspector commands
// when the isolate runs, and a request wakes an idle one. Null after `seconds`.
async function nudged(reply, seconds) {
  let answer;
  let answered = false;
  reply.then((value) => {
    answer = value;
    answered = true;
  });
  const deadline = Date.now() + seconds * 1000;
  while (!answered && Date.now() < deadline) {
    await Promise.race([reply, new Promise((resolve) => setTimeout(resolve, 200))]);
    if (!answered) await fetch(`${baseUrl}/healthz`).catch(() => {});
  }
  return answered ? answer : null;
}

// One inspector session: a forced collection, then the heap's size; null if the runtime
// did not answer in time.
async function v8UsedAfterGcOnce(url) {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.on('open', resolve);
    socket.on('error', reject);
  });
  let next = 0;
  const call = (method) =>
    nudged(
      new Promise((resolve) => {
        const id = ++next;
        const listener = (message) => {
          const reply = JSON.parse(message);
          if (reply.id === id) {
            socket.off('message', listener);
            resolve(reply.result);
          }
        };
        socket.on('message', listener);
        socket.send(JSON.stringify({ id, method }));
      }),
      20,
    );
  try {
    if ((await call('HeapProfiler.collectGarbage')) === null) return null;
    const usage = await call('Runtime.getHeapUsage');
    return usage ? usage.usedSize : null;
  } finally {
    socket.terminate();
  }
}

async function v8UsedAfterGc(processId) {
  const url = await valleTarget(processId);
  if (!url) return { v8_used_bytes: null, v8_error: 'no inspector target core:user:valle' };
  for (let attempt = 1; attempt <= 3; attempt++) {
    const used = await v8UsedAfterGcOnce(url).catch(() => null);
    if (used !== null) return { v8_used_bytes: used };
  }
  return { v8_used_bytes: null, v8_error: 'the inspector did not answer in 3 sessions of 20 s' };
}

(async () => {
  const wasm = await wasmMemory();
  const v8 = process.argv.includes('--no-gc') ? {} : await v8UsedAfterGc(pid);
  console.log(JSON.stringify({ ...wasm, ...v8 }));
  process.exit(0);
})().catch((error) => {
  console.error(`soak-memory: ${error.message}`);
  process.exit(1);
});
