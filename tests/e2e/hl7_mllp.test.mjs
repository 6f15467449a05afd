// A HL7 v2 client no one here wrote (npm node-hl7-client) sends the generator's
// messages over MLLP; the FHIR resources rhip makes of them are checked field by
// field against the generator's own FHIR output of the same events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Message } from 'node-hl7-client';
import { RHIP_BIN, startServer } from './server.mjs';

let server;
let region;

before(async () => {
  region = fs.mkdtempSync(path.join(os.tmpdir(), 'rhip-hl7-region-'));
  const gen = spawnSync(RHIP_BIN, ['gen', '--residents', '300', '--years', '1', '--seed', '21', '--out', region, '--force']);
  assert.equal(gen.status, 0, gen.stderr?.toString());
  server = await startServer(['--mllp-port', '0']);
  assert.ok(server.mllpPort, 'the server reports its MLLP port');
});
after(async () => {
  if (server) await server.stop();
  fs.rmSync(region, { recursive: true, force: true });
});

// The messages of a generator file, as strings in the given encoding (latin1 keeps GB18030 bytes as they are).
function messages(file, encoding = 'utf8') {
  return fs
    .readFileSync(path.join(region, 'hl7v2', file))
    .toString(encoding)
    .split('\n')
    .filter((m) => m.startsWith('MSH'))
    .map((m) => m.replace(/\r$/, ''));
}

function ndjson(type) {
  return fs
    .readFileSync(path.join(region, 'fhir', type + '.ndjson'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

// Sends each message and waits for its ACK before the next (an HL7 sender's usual
// original mode; the client's own queue busy-waits if several are handed to it at once).
async function send(texts, encoding = 'utf-8') {
  const client = new Client({ host: '127.0.0.1' });
  const acks = [];
  const conn = client.createConnection({ port: server.mllpPort, waitAck: true, encoding }, async (res) => {
    acks.push(res.getMessage());
  });
  for (const text of texts) {
    const want = acks.length + 1;
    await conn.sendMessage(new Message({ text }));
    const deadline = Date.now() + 10000;
    while (acks.length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    assert.equal(acks.length, want, 'acknowledged: ' + text.slice(0, 80));
  }
  await conn.close();
  return acks;
}

// AA means stored; the resources follow once the appliers have caught up.
async function drained() {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    const s = await (await server.fetch(`${server.base}/api/hl7/status`)).json();
    if (s.queued === 0) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the HL7 queue did not drain in 60 s');
}

async function search(query) {
  const res = await server.fetch(`${server.fhir}/${query}`);
  assert.equal(res.status, 200, query);
  return res.json();
}

const mrnOf = (p) => p.identifier.find((i) => i.system.startsWith('http://rhip.health/id/mrn/'));

test('ADT^A04 registrations (UTF-8 and GB18030) become the same Patients the generator wrote', async () => {
  const utf8 = messages('adt.hl7').slice(0, 40);
  const gb = messages('adt-gb18030.hl7', 'latin1').slice(0, 15);
  const acks = [...(await send(utf8)), ...(await send(gb, 'latin1'))];
  for (const ack of acks) assert.equal(ack.get('MSA.1').toString(), 'AA', ack.toString());
  await drained();
  const expected = new Map(ndjson('Patient').map((p) => [mrnOf(p).system + '|' + mrnOf(p).value, p]));
  let checked = 0;
  for (const text of [...utf8, ...gb.map((m) => Buffer.from(m, 'latin1').toString('utf8'))]) {
    const pid3 = text.split('\r').find((s) => s.startsWith('PID|')).split('|')[3].split('~')[0].split('^');
    const key = `http://rhip.health/id/mrn/${pid3[3]}|${pid3[0]}`;
    const want = expected.get(key);
    assert.ok(want, 'the generator wrote this registration: ' + key);
    const bundle = await search(`Patient?identifier=${encodeURIComponent(key)}`);
    assert.equal(bundle.entry?.length, 1, 'exactly one Patient for ' + key);
    const got = bundle.entry[0].resource;
    assert.equal(got.name[0].text, want.name[0].text);
    assert.equal(got.name[0].family, want.name[0].family);
    assert.deepEqual(got.name[0].given, want.name[0].given);
    assert.equal(got.gender, want.gender);
    assert.equal(got.birthDate, want.birthDate);
    assert.equal(got.telecom[0].value, want.telecom[0].value);
    assert.equal(got.address[0].district, want.address[0].district);
    assert.equal(got.address[0].text, want.address[0].text);
    const idCard = (p) => p.identifier.find((i) => i.system === 'urn:oid:2.16.156.10011.1.3')?.value;
    assert.equal(idCard(got), idCard(want));
    checked++;
  }
  assert.equal(checked, 55);
});

test('ORU^R01 results become DiagnosticReports and Observations with the generator values', async () => {
  const oru = messages('oru.hl7').slice(0, 30);
  const acks = await send(oru);
  for (const ack of acks) assert.equal(ack.get('MSA.1').toString(), 'AA', ack.toString());
  await drained();
  const reports = new Map(ndjson('DiagnosticReport').map((r) => [r.id, r]));
  const observations = new Map(ndjson('Observation').map((o) => [o.id, o]));
  for (const text of oru) {
    const obr = text.split('\r').find((s) => s.startsWith('OBR|')).split('|');
    const sender = text.split('|')[3];
    const want = reports.get(obr[3]);
    assert.ok(want, 'generator report ' + obr[3]);
    const bundle = await search(
      `DiagnosticReport?identifier=${encodeURIComponent(`http://rhip.health/id/report/${sender}|${obr[3]}`)}&_include=DiagnosticReport:result`,
    );
    const got = bundle.entry.find((e) => e.search.mode === 'match').resource;
    assert.equal(got.code.coding[0].code, want.code.coding[0].code);
    assert.equal(got.code.coding[0].system, want.code.coding[0].system);
    assert.equal(got.category[0].coding[0].code, want.category[0].coding[0].code);
    assert.equal(got.status, want.status);
    assert.equal(got.effectiveDateTime, want.effectiveDateTime);
    assert.equal(got.issued, want.issued);
    assert.equal(got.performer[0].reference, want.performer[0].reference);
    if (want.conclusion) assert.equal(got.conclusion, want.conclusion);
    const included = bundle.entry.filter((e) => e.search.mode === 'include').map((e) => e.resource);
    assert.equal(included.length, (want.result || []).length);
    for (const ref of want.result || []) {
      const w = observations.get(ref.reference.split('/')[1]);
      const g = included.find((o) => o.code.coding[0].code === w.code.coding[0].code);
      assert.ok(g, 'observation ' + w.code.coding[0].code);
      assert.equal(g.valueQuantity.value, w.valueQuantity.value);
      assert.equal(g.valueQuantity.unit, w.valueQuantity.unit);
      assert.equal(g.interpretation[0].coding[0].code, w.interpretation[0].coding[0].code);
      assert.equal(g.referenceRange[0].low.value, w.referenceRange[0].low.value);
      assert.equal(g.referenceRange[0].high.value, w.referenceRange[0].high.value);
      assert.equal(g.effectiveDateTime, w.effectiveDateTime);
      assert.equal(g.status, w.status);
    }
  }
});

test('VXU^V04 vaccinations become the generator Immunizations', async () => {
  const vxu = messages('vxu.hl7').slice(0, 15);
  assert.ok(vxu.length > 0);
  const acks = await send(vxu);
  for (const ack of acks) assert.equal(ack.get('MSA.1').toString(), 'AA', ack.toString());
  await drained();
  const patients = new Map(ndjson('Patient').map((p) => [p.id, p]));
  const immunizations = ndjson('Immunization');
  for (const text of vxu) {
    const rxa = text.split('\r').find((s) => s.startsWith('RXA|')).split('|');
    const pid3 = text.split('\r').find((s) => s.startsWith('PID|')).split('|')[3].split('~')[0].split('^');
    const want = immunizations.find((i) => {
      const mrn = mrnOf(patients.get(i.patient.reference.split('/')[1]));
      return mrn.value === pid3[0] && i.vaccineCode.coding[0].code === rxa[5].split('^')[0] &&
        String(i.protocolApplied[0].doseNumberPositiveInt) === rxa[2];
    });
    assert.ok(want, 'generator immunization for ' + text.slice(0, 60));
    const patient = (await search(`Patient?identifier=${encodeURIComponent(`http://rhip.health/id/mrn/${pid3[3]}|${pid3[0]}`)}`)).entry[0].resource;
    const got = (await search(`Immunization?patient=Patient/${patient.id}&vaccine-code=${rxa[5].split('^')[0]}`)).entry
      .map((e) => e.resource)
      .find((i) => i.protocolApplied[0].doseNumberPositiveInt === want.protocolApplied[0].doseNumberPositiveInt);
    assert.ok(got);
    assert.equal(got.status, want.status);
    assert.equal(got.vaccineCode.coding[0].system, want.vaccineCode.coding[0].system);
    assert.equal(got.occurrenceDateTime.slice(0, 10), want.occurrenceDateTime.slice(0, 10));
    assert.equal(got.performer[0].actor.reference, want.performer[0].actor.reference);
  }
});

test('a bad message gets AE naming the field; the same control id again gets the same ACK', async () => {
  const [first] = messages('adt.hl7').slice(100, 101);
  const bad = first.replace(/\|(\d{8})\|([MF])\|/, '|19801340|$2|').replace(/\|ADT\^A04\^ADT_A01\|([^|]+)\|/, '|ADT^A04^ADT_A01|$1-bad|');
  const [ack] = await send([bad]);
  assert.equal(ack.get('MSA.1').toString(), 'AE');
  assert.match(ack.get('MSA.3').toString(), /PID-7/);
  assert.equal(ack.get('ERR.2.1').toString(), 'PID');
  assert.equal(ack.get('ERR.2.3').toString(), '7');
  assert.equal(ack.get('ERR.3.1').toString(), '102');
  const [again] = await send([bad]);
  assert.equal(again.toString(), ack.toString(), 'a re-sent message gets the same acknowledgement');
  const [ok1] = await send([first]);
  const [ok2] = await send([first]);
  assert.equal(ok1.get('MSA.1').toString(), 'AA');
  assert.equal(ok2.toString(), ok1.toString());
});

// Raw MLLP over a socket, for what a well-behaved client library will not send.
function rawExchange(bytes, { timeoutMs = 20000 } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect({ port: server.mllpPort, host: '127.0.0.1' });
    let got = Buffer.alloc(0);
    const done = (closed) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ reply: got.toString('utf8'), closed });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('data', (c) => {
      got = Buffer.concat([got, c]);
      if (got.includes(0x1c)) done(false);
    });
    socket.on('close', () => done(true));
    socket.on('error', () => done(true));
    socket.write(bytes);
  });
}

test('a 50 MB frame gets AR, garbage gets the connection closed, and the listener keeps serving', async () => {
  const [one] = messages('adt.hl7').slice(200, 201);
  const huge = one.replace(/\|ADT\^A04\^ADT_A01\|([^|]+)\|/, '|ADT^A04^ADT_A01|$1-huge|') + '\rNTE|1||' + 'x'.repeat(50 * 1024 * 1024);
  const big = await rawExchange(Buffer.concat([Buffer.from([0x0b]), Buffer.from(huge), Buffer.from([0x1c, 0x0d])]));
  assert.match(big.reply, /\rMSA\|AR\|/);
  assert.match(big.reply, /exceeds/);
  const garbage = await rawExchange(Buffer.alloc(10000, 'g'));
  assert.equal(garbage.closed, true, 'a peer that sends no MLLP frame is disconnected');
  const [ack] = await send([one]);
  assert.equal(ack.get('MSA.1').toString(), 'AA', 'other connections are served as before');
});
