// Finding Valle's isolate in a running `wrangler dev`: the runtime that runs the worker
// listens on an inspector port, found among its listening sockets, whose target list names
// the isolate `core:user:valle`.
'use strict';
const fs = require('fs');

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

// The DevTools websocket of an isolate (Valle's by default) in the runtime `processId`, or
// null.
async function valleTarget(processId, id = 'core:user:valle') {
  for (const port of listeningPorts(processId)) {
    try {
      const targets = await (
        await fetch(`http://127.0.0.1:${port}/json`, { signal: AbortSignal.timeout(2000) })
      ).json();
      const target = targets.find((t) => t.id === id);
      if (target) return target.webSocketDebuggerUrl;
    } catch {
      // Not the inspector.
    }
  }
  return null;
}

module.exports = { valleTarget };
