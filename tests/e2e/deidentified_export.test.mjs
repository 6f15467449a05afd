// The de-identified Bulk Data $export of the real binary (issue 6): cdc kicks
// off, polls and downloads NDJSON in which no name, ID number, phone, MRN or
// street address of the source is left, Patient ids and every reference to them
// are the same keyed hashes in every file and every export; clinical roles get
// no export at all, another analyst cannot see the job, and the audit log
// records the export as de-identified.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { RHIP_BIN, startServer } from './server.mjs';

const W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const id18 = (first17) => first17 + '10X98765432'[[...first17].reduce((s, c, i) => s + Number(c) * W[i], 0) % 11];

const PEOPLE = [
  { mrn: 'MRN-DE-1', name: '欧阳明远', family: '欧阳', id: id18('33040219900517123'), card: 'H33040299887766', phone: '13912345678', line: '南湖区禾兴路88号', birth: '1990-05-17', district: '330402' },
  { mrn: 'MRN-DE-2', name: '司马秀英', family: '司马', id: id18('33041119850202456'), card: 'H33041155443322', phone: '13698765432', line: '秀洲区中山路7号', birth: '1985-02-02', district: '330411' },
];

async function json(res) {
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

async function exportAs(server, token, url) {
  const auth = { Authorization: `Bearer ${token}` };
  const kick = await fetch(url, { headers: { ...auth, Prefer: 'respond-async' } });
  assert.equal(kick.status, 202, await kick.text());
  const poll = kick.headers.get('content-location');
  for (let i = 0; i < 200; i++) {
    const r = await fetch(poll, { headers: auth });
    if (r.status === 200) {
      const manifest = await r.json();
      const files = {};
      for (const o of manifest.output) {
        const f = await fetch(o.url, { headers: auth });
        assert.equal(f.status, 200);
        files[o.type] = await f.text();
      }
      return { manifest, files, poll };
    }
    assert.equal(r.status, 202, await r.text());
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('export did not finish');
}

const lines = (ndjson) => (ndjson || '').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

test('cdc gets a pseudonymised, de-identified $export; clinical roles get none', async () => {
  const server = await startServer();
  try {
    const post = async (type, body) => {
      const res = await server.fetch(`${server.fhir}/${type}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/fhir+json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 201, type);
      return (await res.json()).id;
    };
    await server.fetch(`${server.fhir}/Organization/ORG-DE`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Organization', id: 'ORG-DE', identifier: [{ system: 'http://rhip.health/id/org', value: '47009999' }], name: '测试卫生院' }),
    });
    const ids = [];
    for (const p of PEOPLE) {
      ids.push(
        await post('Patient', {
          resourceType: 'Patient',
          identifier: [
            { system: 'http://rhip.health/id/mrn/47009999', value: p.mrn },
            { system: 'urn:oid:2.16.156.10011.1.3', value: p.id },
            { system: 'urn:oid:2.16.156.10011.1.19', value: p.card },
          ],
          name: [{ text: p.name, family: p.family }],
          telecom: [{ system: 'phone', value: p.phone }],
          gender: 'female',
          birthDate: p.birth,
          address: [{ text: p.line, line: [p.line], district: p.district }],
          managingOrganization: { reference: 'Organization/ORG-DE' },
        }),
      );
    }
    const obs = await post('Observation', {
      resourceType: 'Observation',
      status: 'final',
      code: { text: '空腹血糖' },
      subject: { reference: `Patient/${ids[0]}`, display: PEOPLE[0].name },
      performer: [{ reference: 'Organization/ORG-DE' }],
      note: [{ text: `电话 ${PEOPLE[0].phone}` }],
      valueQuantity: { value: 7.8, unit: 'mmol/L' },
    });
    await post('Encounter', {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: { reference: `Patient/${ids[1]}` },
      serviceProvider: { reference: 'Organization/ORG-DE' },
    });

    // The operator's plain export has the identifiers (so the checks below can fail).
    const plain = await exportAs(server, server.token, `${server.fhir}/$export`);
    assert.ok(plain.files.Patient.includes(PEOPLE[0].name) && plain.files.Patient.includes(PEOPLE[1].phone));
    assert.equal(plain.manifest.extension['http://rhip.health/fhir/bulk/deidentified'], false);

    const cdc = server.tokenFor('cdc', { sub: 'cdc-analyst-1' });
    const out = await exportAs(server, cdc, `${server.fhir}/$export`);
    assert.equal(out.manifest.requiresAccessToken, true);
    assert.equal(out.manifest.extension['http://rhip.health/fhir/bulk/deidentified'], true);
    const all = Object.values(out.files).join('\n');
    for (const p of PEOPLE)
      for (const secret of [p.name, p.family, p.id, p.card, p.phone, p.mrn, p.line, p.birth])
        assert.ok(!all.includes(secret), `${secret} leaked into the de-identified export`);
    for (const id of ids) assert.ok(!all.includes(id), `source id ${id} leaked`);
    assert.ok(!all.includes('"div"') && !all.includes('"note"'));

    const patients = lines(out.files.Patient);
    assert.equal(patients.length, 2);
    for (const p of patients) {
      assert.match(p.id, /^[0-9a-f]{32}$/);
      assert.deepEqual(p.identifier, [{ system: 'http://rhip.health/id/pseudonym', value: p.id }]);
      assert.equal(p.name, undefined);
      assert.equal(p.telecom, undefined);
      assert.match(p.birthDate, /^\d{4}-\d{2}$/);
      assert.ok(p.address[0].district);
    }
    // The pseudonyms are exactly HMAC-SHA256 with the deployment's key (DATA/keys/pseudonym.key),
    // and references stay consistent: the Observation's subject is its Patient's pseudonym.
    const key = Buffer.from(fs.readFileSync(path.join(server.data, 'keys', 'pseudonym.key'), 'utf8').trim(), 'hex');
    const pseudonym = (type, id) => crypto.createHmac('sha256', key).update(`${type}/${id}`).digest('hex').slice(0, 32);
    assert.deepEqual(patients.map((p) => p.id).sort(), ids.map((id) => pseudonym('Patient', id)).sort());
    const [o] = lines(out.files.Observation);
    assert.equal(o.id, pseudonym('Observation', obs));
    assert.equal(o.subject.reference, `Patient/${pseudonym('Patient', ids[0])}`);
    const first = patients.find((p) => p.birthDate === PEOPLE[0].birth.slice(0, 7));
    assert.equal(o.subject.reference, `Patient/${first.id}`);
    assert.equal(o.subject.display, undefined);
    const [enc] = lines(out.files.Encounter);
    const second = patients.find((p) => p.birthDate === PEOPLE[1].birth.slice(0, 7));
    assert.equal(enc.subject.reference, `Patient/${second.id}`);
    assert.equal(lines(out.files.Organization)[0].name, '测试卫生院'); // directory data stays as it is

    // Another export (Patient level, _type) gives the same pseudonyms: analysts can join.
    const again = await exportAs(server, cdc, `${server.fhir}/Patient/$export?_type=Patient,Observation`);
    assert.deepEqual(lines(again.files.Patient).map((p) => p.id).sort(), patients.map((p) => p.id).sort());
    assert.equal(lines(again.files.Observation)[0].subject.reference, o.subject.reference);
    assert.equal(again.files.Encounter, undefined);

    // The job is the analyst's: another cdc user and clinical roles cannot poll or download it.
    const other = server.tokenFor('cdc', { sub: 'cdc-analyst-2' });
    const clinician = server.tokenFor('clinician', { org: '47009999' });
    const resident = server.tokenFor('resident', { person: 'PER-X' });
    const fileUrl = out.manifest.output[0].url;
    for (const [who, token, status] of [['other analyst', other, 403], ['clinician', clinician, 403]]) {
      assert.equal((await fetch(out.poll, { headers: { Authorization: `Bearer ${token}` } })).status, status, who);
      const f = await fetch(fileUrl, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(f.status, status, who);
      assert.ok(!(await f.text()).includes(first.id), who);
    }
    // No export of any kind for clinical roles.
    for (const token of [clinician, resident]) {
      for (const url of ['/$export', '/$export?deidentify=true', '/Patient/$export?deidentify=true']) {
        const r = await fetch(server.fhir + url, { headers: { Authorization: `Bearer ${token}`, Prefer: 'respond-async' } });
        assert.equal(r.status, 403, url);
        assert.equal((await json(r)).resourceType, 'OperationOutcome');
      }
    }
    // The operator may ask for the de-identified form explicitly: the same pseudonyms.
    const adminDeid = await exportAs(server, server.token, `${server.fhir}/Patient/$export?_type=Patient&deidentify=true`);
    assert.deepEqual(lines(adminDeid.files.Patient).map((p) => p.id).sort(), patients.map((p) => p.id).sort());
  } finally {
    await server.stop({ keepData: true });
  }
  // The audit log records the analyst's export, marked de-identified.
  const rows = execFileSync(RHIP_BIN, ['audit', 'show', '--data', server.data, '--count', '100000'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const events = rows.trim().split('\n').map((l) => JSON.parse(l));
  const kick = events.find(
    (e) => e.agent[0].who.display === 'cdc-analyst-1' && e.entity.some((x) => x.description === 'GET /fhir/$export'),
  );
  assert.ok(kick, 'no AuditEvent for the cdc export');
  assert.equal(kick.outcome, '0');
  assert.equal(kick.outcomeDesc, 'de-identified');
  assert.equal(kick.subtype[0].code, 'operation');
  const refused = events.filter((e) => e.agent[0].type.text === 'clinician' && e.outcome === '4');
  assert.ok(refused.length >= 3, 'the refused exports are audited');
  fs.rmSync(server.data, { recursive: true, force: true });
});
