// A FHIR client no one here wrote (npm fhir-kit-client) drives rhip's REST API:
// create, read, search, transaction, history, error outcomes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'fhir-kit-client';
import { startServer } from './server.mjs';

let server;
let client;

before(async () => {
  server = await startServer();
  client = new Client({ baseUrl: server.fhir, bearerToken: server.token });
});
after(async () => server && (await server.stop()));

const ID_SYSTEM = 'urn:oid:2.16.156.10011.1.3';

function patient(idNumber, name) {
  return {
    resourceType: 'Patient',
    identifier: [
      { system: 'http://rhip.health/id/mrn/47000001', value: 'MRN-' + idNumber.slice(-6) },
      { system: ID_SYSTEM, value: idNumber },
    ],
    name: [{ text: name, family: name.slice(0, 1), given: [name.slice(1)] }],
    gender: 'male',
    birthDate: '1990-01-01',
    address: [{ district: '330402', text: '浙江省嘉兴市南湖区' }],
  };
}

test('create then read returns the stored resource with id and version', async () => {
  const created = await client.create({ resourceType: 'Patient', body: patient('330402199001011234', '张伟') });
  assert.ok(created.id, 'server assigned an id');
  assert.equal(created.meta.versionId, '1');
  const read = await client.read({ resourceType: 'Patient', id: created.id });
  assert.equal(read.name[0].text, '张伟');
  assert.equal(read.identifier[1].value, '330402199001011234');
});

test('search by identifier finds exactly the matching patient', async () => {
  await client.create({ resourceType: 'Patient', body: patient('330411198502023456', '李娜') });
  const bundle = await client.search({
    resourceType: 'Patient',
    searchParams: { identifier: `${ID_SYSTEM}|330411198502023456`, _total: 'accurate' },
  });
  assert.equal(bundle.resourceType, 'Bundle');
  assert.equal(bundle.type, 'searchset');
  assert.equal(bundle.total, 1);
  assert.equal(bundle.entry[0].resource.name[0].text, '李娜');
});

test('transaction creates linked resources atomically and rewrites urn:uuid references', async () => {
  const body = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:0b6f1c1e-0000-4000-8000-000000000001', resource: patient('330421197003034567', '王芳'),
        request: { method: 'POST', url: 'Patient' } },
      { fullUrl: 'urn:uuid:0b6f1c1e-0000-4000-8000-000000000002',
        resource: { resourceType: 'Encounter', status: 'finished',
          class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
          subject: { reference: 'urn:uuid:0b6f1c1e-0000-4000-8000-000000000001' },
          period: { start: '2024-03-05T09:00:00+08:00', end: '2024-03-05T09:20:00+08:00' } },
        request: { method: 'POST', url: 'Encounter' } },
    ],
  };
  const resp = await client.transaction({ body });
  assert.equal(resp.type, 'transaction-response');
  assert.equal(resp.entry.length, 2);
  assert.match(resp.entry[0].response.status, /^201/);
  const patientRef = resp.entry[0].response.location.match(/Patient\/[^/]+/)[0];
  const encId = resp.entry[1].response.location.match(/Encounter\/([^/]+)/)[1];
  const enc = await client.read({ resourceType: 'Encounter', id: encId });
  assert.equal(enc.subject.reference, patientRef);
  const found = await client.search({ resourceType: 'Encounter', searchParams: { subject: patientRef } });
  assert.equal(found.entry.length, 1);
});

test('update makes a new version and history lists both', async () => {
  const created = await client.create({ resourceType: 'Patient', body: patient('330424196504045678', '刘洋') });
  const changed = { ...created, telecom: [{ system: 'phone', value: '13800000000' }] };
  const updated = await client.update({ resourceType: 'Patient', id: created.id, body: changed });
  assert.equal(updated.meta.versionId, '2');
  const history = await client.resourceHistory({ resourceType: 'Patient', id: created.id });
  assert.equal(history.type, 'history');
  assert.deepEqual(history.entry.map((e) => e.resource.meta.versionId), ['2', '1']);
  const v1 = await client.vread({ resourceType: 'Patient', id: created.id, version: '1' });
  assert.equal(v1.telecom, undefined);
});

test('an invalid resource is refused with an OperationOutcome naming the element', async () => {
  const bad = patient('330481199912315678', '陈静');
  bad.birthDate = '1999-13-01';
  await assert.rejects(
    client.create({ resourceType: 'Patient', body: bad }),
    (err) => {
      const status = err.response?.status;
      const oo = err.response?.data;
      assert.equal(status, 400);
      assert.equal(oo.resourceType, 'OperationOutcome');
      assert.ok(JSON.stringify(oo).includes('birthDate'), JSON.stringify(oo));
      return true;
    },
  );
});

test('capability statement lists the resource types', async () => {
  const cs = await client.capabilityStatement();
  assert.equal(cs.resourceType, 'CapabilityStatement');
  const types = cs.rest[0].resource.map((r) => r.type);
  for (const t of ['Patient', 'Encounter', 'Observation', 'Immunization', 'Claim', 'Appointment']) {
    assert.ok(types.includes(t), `metadata lists ${t}`);
  }
});

test('Patient/$match finds another institution\'s registration of the same person', async () => {
  const idNumber = '330402198805051237';
  const mine = patient(idNumber, '陈静');
  mine.identifier[0] = { system: 'http://rhip.health/id/mrn/330402-T1', value: 'T1-0001' };
  await client.create({ resourceType: 'Patient', body: mine });
  const query = patient(idNumber, '陳靜'); // traditional characters, as another clerk typed it
  delete query.identifier[0];
  query.identifier = query.identifier.filter(Boolean);
  const result = await client.operation({
    name: 'match',
    resourceType: 'Patient',
    input: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: query }, { name: 'count', valueInteger: 3 }] },
  });
  assert.equal(result.resourceType, 'Bundle');
  assert.ok(result.entry.length >= 1);
  const best = result.entry[0];
  assert.equal(best.resource.identifier.find((i) => i.system === ID_SYSTEM).value, idNumber);
  assert.equal(best.search.extension[0].url, 'http://hl7.org/fhir/StructureDefinition/match-grade');
  assert.equal(best.search.extension[0].valueCode, 'certain');
});

test('without a token the API answers 401; metadata and healthz stay public', async () => {
  const res = await fetch(`${server.fhir}/Patient`);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /^Bearer/);
  const anonymous = new Client({ baseUrl: server.fhir });
  await assert.rejects(anonymous.search({ resourceType: 'Patient' }), (e) => e.response?.status === 401);
  assert.equal((await fetch(`${server.fhir}/metadata`)).status, 200);
  assert.equal((await fetch(`${server.base}/healthz`)).status, 200);
});
