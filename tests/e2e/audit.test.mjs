// The audit log of the real binary: requests leave AuditEvents in DATA/audit.db,
// `rhip audit verify` checks the hash chain, and changing one record with the
// sqlite3 shell (what someone with the file could do) is detected and named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { RHIP_BIN, startServer } from './server.mjs';

test('audit verify passes on a served data folder and names a tampered record', async () => {
  const server = await startServer();
  const patient = {
    resourceType: 'Patient',
    identifier: [{ system: 'http://rhip.health/id/mrn/47000001', value: 'MRN-1' }],
    name: [{ text: '张伟' }],
  };
  const created = await (
    await server.fetch(`${server.fhir}/Patient`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify(patient),
    })
  ).json();
  for (let i = 0; i < 5; i++) assert.equal((await server.fetch(`${server.fhir}/Patient/${created.id}`)).status, 200);
  assert.equal((await fetch(`${server.fhir}/Patient/${created.id}`)).status, 401); // refused: audited too
  const resident = server.tokenFor('resident', { person: 'PER-X' });
  const denied = await fetch(`${server.fhir}/Patient/${created.id}`, { headers: { Authorization: `Bearer ${resident}` } });
  assert.equal(denied.status, 403);
  await server.stop({ keepData: true }); // a graceful stop writes out what is queued

  const ok = spawnSync(RHIP_BIN, ['audit', 'verify', '--data', server.data], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  const records = Number(ok.stdout.match(/intact: (\d+) records/)[1]);
  assert.ok(records >= 8, ok.stdout);

  // Someone rewrites who made the accesses of the first page (its first record is the admin's create).
  const db = path.join(server.data, 'audit.db');
  execFileSync('sqlite3', [db, "UPDATE resource SET json = replace(json, 'rhip-token:admin', 'nobody') WHERE type = 'Bundle' AND id = '000000000001'"]);
  const broken = spawnSync(RHIP_BIN, ['audit', 'verify', '--data', server.data], { encoding: 'utf8' });
  assert.equal(broken.status, 2, broken.stdout + broken.stderr);
  assert.match(broken.stdout, /BROKEN at record 1 /);
  fs.rmSync(server.data, { recursive: true, force: true });
});
