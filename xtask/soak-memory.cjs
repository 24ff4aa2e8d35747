// The memory Valle itself holds in a running `wrangler dev`, for `cargo xtask soak`:
// the wasm linear memory of the worker and of the KPI object (from /metrics), and the V8
// heap of Valle's isolate after a forced garbage collection (through the runtime's own
// inspector, found among the runtime process's listening sockets).
//
// usage: node xtask/soak-memory.cjs BASE_URL OFFICER_TOKEN RUNTIME_PID
// prints one JSON line: {"wasm_worker_bytes":..,"wasm_kpi_object_bytes":..,"v8_used_bytes":..}
'use strict';
const fs = require('fs');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'node_modules', 'ws'));

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

// Ports the process listens on: its socket inodes matched against /proc/net/tcp.
function listeningPorts(processId) {
  const inodes = new Set();
  for (const fd of fs.readdirSync(`/proc/${processId}/fd`)) {
    try {
      const link = fs.readlinkSync(`/proc/${processId}/fd/${fd}`);
      const match = /^socket:\[(\d+)\]$/.exec(link);
      if (match) inodes.add(match[1]);
    } catch {
      // The descriptor closed meanwhile.
    }
  }
  const ports = [];
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // Field 3 is the state (0A = LISTEN), field 9 the inode.
    if (fields.length > 9 && fields[3] === '0A' && inodes.has(fields[9])) {
      ports.push(parseInt(fields[1].split(':')[1], 16));
    }
  }
  return ports;
}

async function valleTarget(processId) {
  for (const port of listeningPorts(processId)) {
    try {
      const targets = await (
        await fetch(`http://127.0.0.1:${port}/json`, { signal: AbortSignal.timeout(2000) })
      ).json();
      const target = targets.find((t) => t.id === 'core:user:valle');
      if (target) return target.webSocketDebuggerUrl;
    } catch {
      // Not the inspector.
    }
  }
  return null;
}

async function nudged(reply) {
  let answered = false;
  reply.then(() => {
    answered = true;
  });
  for (let tries = 0; !answered && tries < 300; tries++) {
    await Promise.race([reply, new Promise((resolve) => setTimeout(resolve, 200))]);
    if (!answered) await fetch(`${baseUrl}/healthz`).catch(() => {});
  }
  return reply;
}

async function v8UsedAfterGc(processId) {
  const url = await valleTarget(processId);
  if (!url) return null;
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.on('open', resolve);
    socket.on('error', reject);
  });
  let next = 0;
  // workerd handles inspector commands when the isolate runs; a request wakes an idle one.
  const call = (method) =>
    nudged(new Promise((resolve) => {
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
    }));
  await call('HeapProfiler.collectGarbage');
  const usage = await call('Runtime.getHeapUsage');
  socket.close();
  return usage.usedSize;
}

(async () => {
  const wasm = await wasmMemory();
  const v8 = await v8UsedAfterGc(pid);
  console.log(JSON.stringify({ ...wasm, v8_used_bytes: v8 }));
  process.exit(0);
})().catch((error) => {
  console.error(`soak-memory: ${error.message}`);
  process.exit(1);
});
