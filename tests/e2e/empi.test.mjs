// The EMPI through the running server: every Patient (REST and HL7 v2) gets a
// Person, $ihe-pix lists the person's identifiers, Patient?identifier= finds the
// person's records at every institution, the stewards' review queue and merge,
// and person ids that survive a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer } from './server.mjs';

let server;
before(async () => {
  server = await startServer(['--mllp-port', '0']);
});
after(async () => server && (await server.stop()));

const ID = 'urn:oid:2.16.156.10011.1.3';
const PERSON = 'urn:oid:2.16.156.10011.1.2';
const W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const id18 = (first17) => first17 + '10X98765432'[[...first17].reduce((s, c, i) => s + Number(c) * W[i], 0) % 11];

// Institutions' records go in as the operator; the stewardship API is used as a data steward.
let steward;
const stewardToken = () => (steward ??= server.tokenFor('steward'));
async function fhir(method, path, body) {
  const res = await server.fetch(server.fhir + path, {
    method,
    headers: { 'content-type': 'application/fhir+json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
async function api(method, path, body) {
  const res = await server.fetch(server.base + '/api/mpi/' + path, {
    method,
    headers: { 'content-type': 'application/json', Authorization: `Bearer ${stewardToken()}` },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}
function patient(org, mrn, { name, birth, gender = 'male', idNumber, phone, county = '330402' }) {
  const identifier = [{ system: `http://rhip.health/id/mrn/${org}`, value: mrn }];
  if (idNumber) identifier.push({ system: ID, value: idNumber });
  const p = { resourceType: 'Patient', identifier, name: [{ text: name }], gender, birthDate: birth, address: [{ district: county }] };
  if (phone) p.telecom = [{ system: 'phone', value: phone }];
  return p;
}
async function create(org, mrn, fields) {
  const r = await fhir('POST', '/Patient', patient(org, mrn, fields));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}
const personOf = async (patientId) => (await api('GET', `patients/${patientId}/person`)).body.id;

test('records of one resident at three institutions share one Person; PIXm and the identifier search see all of them', async () => {
  const idNumber = id18('33040219880808123');
  const a = await create('330402-H01', 'H1-1', { name: '孙磊', birth: '1988-08-08', idNumber, phone: '13711112222' });
  const b = await create('330402-T01', 'T1-1', { name: '孫磊', birth: '1988-08-08', idNumber });  // traditional characters
  const c = await create('330411-V01', 'V1-1', { name: '孙磊', birth: '1988-08-08', phone: '13711112222' });  // no ID number
  const person = await personOf(a);
  assert.match(person, /^330400\d{10}[\dX]$/);
  assert.equal(await personOf(b), person);
  assert.equal(await personOf(c), person);

  const stored = await fhir('GET', `/Person/${person}`);
  assert.equal(stored.status, 200);
  assert.deepEqual(stored.body.identifier[0], { use: 'official', system: PERSON, value: person });
  assert.deepEqual(stored.body.link.map((l) => l.target.reference).sort(), [a, b, c].map((x) => `Patient/${x}`).sort());
  assert.equal((await fhir('DELETE', `/Person/${person}`)).status, 405, 'Persons are the EMPI’s');

  const pix = await fhir('GET', `/Patient/$ihe-pix?sourceIdentifier=${encodeURIComponent('http://rhip.health/id/mrn/330411-V01|V1-1')}`);
  assert.equal(pix.status, 200, JSON.stringify(pix.body));
  const ids = pix.body.parameter.filter((p) => p.name === 'targetIdentifier').map((p) => `${p.valueIdentifier.system}|${p.valueIdentifier.value}`);
  for (const want of [`${PERSON}|${person}`, `${ID}|${idNumber}`, 'http://rhip.health/id/mrn/330402-H01|H1-1', 'http://rhip.health/id/mrn/330402-T01|T1-1'])
    assert.ok(ids.includes(want), `${want} in ${ids}`);
  assert.equal((await fhir('GET', `/Patient/$ihe-pix?sourceIdentifier=${encodeURIComponent(ID + '|' + id18('11010119990101001'))}`)).status, 404);
  assert.equal((await fhir('GET', '/Patient/$ihe-pix?sourceIdentifier=nobar')).status, 400);

  const found = await fhir('GET', `/Patient?identifier=${encodeURIComponent(ID + '|' + idNumber)}`);
  assert.deepEqual(found.body.entry.map((e) => e.resource.id).sort(), [a, b, c].sort(), 'the record without the ID number too');
  const cap = await fhir('GET', '/metadata');
  const ops = cap.body.rest[0].resource.find((r) => r.type === 'Patient').operation.map((o) => o.name);
  assert.ok(ops.includes('ihe-pix') && ops.includes('match'));
});

test('a gray-zone pair waits in the review queue with its explanation; the steward links it', async () => {
  // Day and month swapped, another county and another phone: alike, but not enough to link unseen.
  const x = await create('330402-H01', 'H1-2', { name: '朱娟', birth: '1972-03-12', gender: 'female', phone: '13900000001' });
  const y = await create('330424-T09', 'T9-2', { name: '朱娟', birth: '1972-12-03', gender: 'female', phone: '13900000002', county: '330424' });
  assert.notEqual(await personOf(x), await personOf(y));
  const queue = await api('GET', 'review?_count=50');
  assert.equal(queue.status, 200);
  const item = queue.body.items.find((i) => i.records.some((r) => r.patient === x) && i.records.some((r) => r.patient === y));
  assert.ok(item, JSON.stringify(queue.body));
  assert.equal(item.explanation.fields.find((f) => f.field === 'birth-date').meaning, 'day and month swapped');
  const decided = await api('POST', `review/${item.id}`, { decision: 'link', steward: 'steward-li', reason: 'same mother, date typed wrong' });
  assert.equal(decided.status, 200, JSON.stringify(decided.body));
  assert.equal(await personOf(x), await personOf(y));
  const again = await api('POST', `review/${item.id}`, { decision: 'no-link', steward: 'x', reason: 'y' });
  assert.equal(again.status, 409);
  const trail = await api('GET', `persons/${await personOf(x)}/trail`);
  assert.ok(trail.body.changes.some((c) => c.action === 'review-link' && c.actor === 'steward-li'));
});

test('Patients loaded by Bulk Data $import are linked as they commit', async () => {
  const idNumber = id18('33040219660606043');
  const lines = [
    { ...patient('330402-H01', 'BI-1', { name: '胡艳', birth: '1966-06-06', gender: 'female', idNumber }), id: 'bulk-1' },
    { ...patient('330483-T03', 'BI-2', { name: '胡艳', birth: '1966-06-06', gender: 'female', idNumber, county: '330483' }), id: 'bulk-2' },
  ].map((p) => JSON.stringify(p)).join('\n');
  const res = await server.fetch(server.fhir + '/$import', {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+ndjson', prefer: 'respond-async' },
    body: lines,
  });
  assert.equal(res.status, 202, await res.text());
  const poll = res.headers.get('content-location');
  await waitFor(async () => (await server.fetch(poll)).status === 200, 'the import job');
  const person = await personOf('bulk-1');
  assert.ok(person);
  assert.equal(await personOf('bulk-2'), person);
});

// HL7 v2 over MLLP, one message per connection; resolves with the ACK text.
function sendHl7(text) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: server.mllpPort, host: '127.0.0.1' });
    let got = Buffer.alloc(0);
    socket.on('data', (c) => {
      got = Buffer.concat([got, c]);
      if (got.includes(0x1c)) {
        socket.destroy();
        resolve(got.toString('utf8'));
      }
    });
    socket.on('error', reject);
    socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(text.replace(/\n/g, '\r')), Buffer.from([0x1c, 0x0d])]));
  });
}
async function waitFor(fn, what) {
  for (let i = 0; i < 200; ++i) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out waiting for ' + what);
}
const patientByMrn = async (org, mrn) =>
  (await fhir('GET', `/Patient?identifier=${encodeURIComponent(`http://rhip.health/id/mrn/${org}|${mrn}`)}`)).body.entry?.[0]?.resource;

test('HL7 registrations are linked, ADT^A40 merges the person, and ids survive a restart', async () => {
  const msh = (ctrl, type) => `MSH|^~\\&|HIS|330402-H05|RHIP|RHIP|20240301120000||${type}|${ctrl}|P|2.5|||||||UNICODE UTF-8`;
  const a1 = `${msh('E1', 'ADT^A04^ADT_A01')}\nPID|1||HL-1^^^330402-H05^MR||马^超||19950505|M|||^^^^^^^^330402||13633334444`;
  const a2 = `${msh('E2', 'ADT^A04^ADT_A01')}\nPID|1||HL-2^^^330402-H05^MR||马^超||19960707|M|||^^^^^^^^330402`;
  for (const m of [a1, a2]) assert.match(await sendHl7(m), /MSA\|AA/);
  const r1 = await waitFor(() => patientByMrn('330402-H05', 'HL-1'), 'HL-1 applied');
  const r2 = await waitFor(() => patientByMrn('330402-H05', 'HL-2'), 'HL-2 applied');
  const p1 = await waitFor(() => personOf(r1.id), 'HL-1 linked');
  const p2 = await waitFor(() => personOf(r2.id), 'HL-2 linked');
  assert.notEqual(p1, p2, 'not alike enough to link automatically');
  // The hospital finds HL-2 was a duplicate registration of HL-1: ADT^A40.
  const merge = `${msh('E3', 'ADT^A40^ADT_A39')}\nPID|1||HL-1^^^330402-H05^MR||马^超||19950505|M\nMRG|HL-2^^^330402-H05^MR`;
  assert.match(await sendHl7(merge), /MSA\|AA/);
  await waitFor(async () => (await personOf(r2.id)) === p1, 'the merged record in the survivor’s person');
  // The Person resources are written by the EMPI's linker right after its decision.
  const retired = await waitFor(async () => {
    const r = await fhir('GET', `/Person/${p2}`);
    return r.body.active === false ? r : undefined;
  }, 'the retired person written');
  assert.equal(retired.body.link[0].target.reference, `Person/${p1}`);

  const before = { [r1.id]: p1, [r2.id]: p1 };
  await server.stop({ keepData: true });
  server = await startServer(['--mllp-port', '0'], { data: server.data });
  for (const [patientId, person] of Object.entries(before)) assert.equal(await personOf(patientId), person);
});
