// Never lose an acknowledged message: a 100,000-message HL7 stream over 8 MLLP
// connections; the server is killed with SIGKILL in the middle; after a restart
// every message that got AA is in the store exactly once (applied from the durable
// queue after the restart), and sending those
// messages again (as a sender does after a lost connection) gets the same ACKs
// and changes nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { RHIP_BIN, startServer } from './server.mjs';

const VT = 0x0b, FS = 0x1c, CR = 0x0d;

// A minimal MLLP connection: one message at a time, resolves with the ACK text.
function connect(port) {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.setNoDelay(true);
  let buf = Buffer.alloc(0);
  let waiting = null;
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf(FS);
    if (end >= 0 && waiting) {
      const start = buf.indexOf(VT);
      const ack = buf.subarray(start + 1, end).toString('utf8');
      buf = buf.subarray(end + 2);
      const w = waiting;
      waiting = null;
      w.resolve(ack);
    }
  });
  const fail = (e) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w.reject(e || new Error('connection closed'));
    }
  };
  socket.on('error', fail);
  socket.on('close', () => fail());
  return {
    ready: new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
    send(text) {
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        socket.write(Buffer.concat([Buffer.from([VT]), Buffer.from(text, 'utf8'), Buffer.from([FS, CR])]));
      });
    },
    close() {
      socket.destroy();
    },
  };
}

const region = fs.mkdtempSync(path.join(os.tmpdir(), 'rhip-crash-region-'));
let server;
after(async () => {
  if (server) await server.stop();
  fs.rmSync(region, { recursive: true, force: true });
});

function messagesOf(file) {
  return fs
    .readFileSync(path.join(region, 'hl7v2', file), 'utf8')
    .split('\n')
    .filter((m) => m.startsWith('MSH'))
    .map((m) => m.replace(/\r$/, ''));
}

// What identifies the resource a message makes: the MRN of an ADT, the report number of an ORU.
function keyOf(text) {
  const segs = text.split('\r');
  const sender = segs[0].split('|')[3];
  if (segs[0].includes('|ORU^R01')) {
    const obr = segs.find((s) => s.startsWith('OBR|')).split('|');
    return { type: 'DiagnosticReport', identifier: `http://rhip.health/id/report/${sender}|${obr[3]}` };
  }
  const pid3 = segs.find((s) => s.startsWith('PID|')).split('|')[3].split('~')[0].split('^');
  return { type: 'Patient', identifier: `http://rhip.health/id/mrn/${pid3[3]}|${pid3[0]}` };
}

test('every message acknowledged before a SIGKILL is stored exactly once after the restart', async () => {
  const gen = spawnSync(RHIP_BIN, ['gen', '--residents', '18000', '--years', '1', '--seed', '9', '--out', region, '--force']);
  assert.equal(gen.status, 0, gen.stderr?.toString());
  // ADT registrations interleaved with lab results, 100,000 in all.
  const adt = messagesOf('adt.hl7');
  const oru = messagesOf('oru.hl7');
  const stream = [];
  for (let i = 0; stream.length < 100000 && (i < adt.length || i < oru.length); i++) {
    if (i < adt.length) stream.push(adt[i]);
    if (i < oru.length && stream.length < 100000) stream.push(oru[i]);
  }
  assert.equal(stream.length, 100000);

  server = await startServer(['--mllp-port', '0']);
  const port = server.mllpPort;
  const acked = new Map(); // index → ACK text
  let next = 0;
  let killed = false;
  const workers = [];
  for (let c = 0; c < 8; c++) {
    workers.push(
      (async () => {
        const conn = connect(port);
        await conn.ready;
        while (next < stream.length) {
          const i = next++;
          let ack;
          try {
            ack = await conn.send(stream[i]);
          } catch {
            return; // the server died: this message was never acknowledged
          }
          if (ack.includes('\rMSA|AA|')) acked.set(i, ack);
        }
        conn.close();
      })(),
    );
  }
  // Kill it in the middle of the stream, while all 8 connections are busy.
  while (acked.size < 3000) await new Promise((r) => setTimeout(r, 10));
  await server.crash();
  killed = true;
  await Promise.all(workers);
  assert.ok(killed);
  assert.ok(next < stream.length, 'the stream was cut in the middle');
  const ackedCount = acked.size;

  // Restart on the same data folder.
  const data = server.data;
  server = await startServer(['--mllp-port', '0'], { data });
  // Accepted before the crash but not yet applied: applied now, from the store.
  const deadline = Date.now() + 300000;
  const atRestart = await (await server.fetch(`${server.base}/api/hl7/status`)).json();
  console.log(`# accepted but not yet applied when it was killed: ${atRestart.queued}`);
  for (;;) {
    const s = await (await server.fetch(`${server.base}/api/hl7/status`)).json();
    if (s.queued === 0) break;
    assert.ok(Date.now() < deadline, 'the queue drains after the restart');
    await new Promise((r) => setTimeout(r, 50));
  }
  const byType = { Patient: [], DiagnosticReport: [] };
  for (const i of acked.keys()) {
    const k = keyOf(stream[i]);
    byType[k.type].push(k.identifier);
  }
  for (const [type, identifiers] of Object.entries(byType)) {
    const found = new Map();
    for (let i = 0; i < identifiers.length; i += 40) {
      const chunk = identifiers.slice(i, i + 40);
      const q = `${server.fhir}/${type}?identifier=${chunk.map(encodeURIComponent).join(',')}&_count=1000&_elements=identifier`;
      const res = await server.fetch(q);
      assert.equal(res.status, 200);
      const bundle = await res.json();
      for (const e of bundle.entry || []) {
        for (const id of e.resource.identifier) {
          const key = `${id.system}|${id.value}`;
          if (chunk.includes(key)) found.set(key, (found.get(key) || 0) + 1);
        }
      }
    }
    for (const key of identifiers) assert.equal(found.get(key), 1, `${type} ${key}: acknowledged, so stored exactly once`);
  }

  // The sender re-sends what it sent (acknowledged or not is its own business): the
  // acknowledged ones get the very same ACK, and the store does not grow for them.
  const countOf = async (type) => (await (await server.fetch(`${server.fhir}/${type}?_summary=count`)).json()).total;
  const before = { Patient: await countOf('Patient'), DiagnosticReport: await countOf('DiagnosticReport') };
  const conn = connect(server.mllpPort);
  await conn.ready;
  const sample = [...acked.keys()].slice(0, 500);
  for (const i of sample) assert.equal(await conn.send(stream[i]), acked.get(i), 're-sent message ' + i);
  conn.close();
  assert.equal(await countOf('Patient'), before.Patient);
  assert.equal(await countOf('DiagnosticReport'), before.DiagnosticReport);
  console.log(`# acknowledged before the kill: ${ackedCount} of ${stream.length}; all stored once`);
});
