// Authorization through the real binary with the EMPI's own PersonDirectory: a
// resident reads the records the EMPI linked to their person at every
// institution and nothing else; a clinician reads a person after an encounter
// at their institution, another person only by break-glass; a system writes only
// its own institution's records; the resident's access log names the clinician.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => server && (await server.stop()));

const W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const id18 = (first17) => first17 + '10X98765432'[[...first17].reduce((s, c, i) => s + Number(c) * W[i], 0) % 11];
const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);

async function call(token, method, path, body, headers = {}) {
  const res = await fetch(server.base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}
const patient = (org, mrn, name, idNumber) => ({
  resourceType: 'Patient',
  identifier: [{ system: `http://rhip.health/id/mrn/${org}`, value: mrn }, { system: 'urn:oid:2.16.156.10011.1.3', value: idNumber }],
  name: [{ text: name }],
  gender: 'female',
  birthDate: '1985-02-02',
  address: [{ district: '330411' }],
});
const encounter = (patientId, org) => ({
  resourceType: 'Encounter',
  status: 'finished',
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
  subject: { reference: `Patient/${patientId}` },
  serviceProvider: { reference: `Organization/${org}` },
  period: { start: day(-3), end: day(-3) },
});

test('roles see exactly what the policy allows, with the EMPI deciding who is the same person', async () => {
  const admin = server.token;
  const systemH = server.tokenFor('system', { org: '330402-H01' });
  const mine = id18('33041119850202456');
  const other = id18('33041119700707111');
  // Two records of one resident (two institutions), one of somebody else.
  const a = (await call(systemH, 'POST', '/fhir/Patient', patient('330402-H01', 'H-1', '周敏', mine))).body.id;
  const b = (await call(admin, 'POST', '/fhir/Patient', patient('330411-T01', 'T-1', '周敏', mine))).body.id;
  const c = (await call(admin, 'POST', '/fhir/Patient', patient('330411-T01', 'T-2', '吴刚', other))).body.id;
  assert.ok(a && b && c);
  const steward = server.tokenFor('steward');
  const personOf = async (id) => (await (await fetch(`${server.base}/api/mpi/patients/${id}/person`, { headers: { Authorization: `Bearer ${steward}` } })).json()).id;
  const person = await personOf(a);
  assert.equal(await personOf(b), person);
  assert.notEqual(await personOf(c), person);

  // The resident.
  const resident = server.tokenFor('resident', { person });
  assert.equal((await call(resident, 'GET', `/fhir/Patient/${a}`)).status, 200);
  assert.equal((await call(resident, 'GET', `/fhir/Patient/${b}`)).status, 200);
  assert.equal((await call(resident, 'GET', `/fhir/Patient/${c}`)).status, 403);
  const all = await call(resident, 'GET', '/fhir/Patient?_total=accurate');
  assert.equal(all.body.total, 2);
  const byOtherId = await call(resident, 'GET', `/fhir/Patient?identifier=${encodeURIComponent('urn:oid:2.16.156.10011.1.3|' + other)}&_total=accurate`);
  assert.equal(byOtherId.body.total, 0);
  assert.equal((await call(resident, 'GET', `/fhir/Patient/${c}/$everything`)).status, 403);

  // A system writes its own institution's encounter, not another's.
  assert.equal((await call(systemH, 'POST', '/fhir/Encounter', encounter(a, '330402-H01'))).status, 201);
  assert.equal((await call(systemH, 'POST', '/fhir/Encounter', encounter(c, '330411-T01'))).status, 403);

  // A clinician of H01: the person (both records) after that encounter; the other person only by break-glass.
  const clinician = server.tokenFor('clinician', { org: '330402-H01' });
  assert.equal((await call(clinician, 'GET', `/fhir/Patient/${b}`)).status, 200);
  assert.equal((await call(clinician, 'GET', `/fhir/Patient/${c}`)).status, 403);
  const glass = await call(clinician, 'GET', `/fhir/Patient/${c}`, undefined, { 'X-Break-Glass-Reason': 'chest pain, unconscious' });
  assert.equal(glass.status, 200);
  assert.ok(glass.headers.get('x-rhip-break-glass'));

  // CDC sees the line list without names or ID numbers.
  const cdc = await call(server.tokenFor('cdc'), 'GET', '/fhir/Patient?_count=10');
  assert.equal(cdc.status, 200);
  const text = JSON.stringify(cdc.body);
  assert.ok(!text.includes('周敏') && !text.includes(mine), text);

  // The resident's access log names the clinician's institution; the other person's log has the break-glass.
  const log = await call(resident, 'GET', '/api/me/access-log');
  assert.equal(log.status, 200);
  assert.ok(log.body.entries.some((e) => e.institution === '330402-H01' && e.role === 'clinician'), JSON.stringify(log.body));
  const theirs = await call(server.tokenFor('resident', { person: await personOf(c) }), 'GET', '/api/me/access-log');
  assert.ok(theirs.body.entries.some((e) => e.breakGlassReason === 'chest pain, unconscious'), JSON.stringify(theirs.body));
});
