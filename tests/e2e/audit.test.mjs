// The audit log of the real binary: requests leave AuditEvents in DATA/audit.db,
// `rhip audit verify` checks the hash chain, and changing one record with the
// sqlite3 shell (what someone with the file could do) is detected and named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
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
  // Pages are stored zstd-compressed: take the page out, decompress, edit, compress, put it back.
  const page = path.join(server.data, 'page1');
  execFileSync('sqlite3', [db, `SELECT writefile('${page}.zst', json) FROM resource WHERE type = 'Bundle' AND id = '000000000001'`]);
  execFileSync('zstd', ['-q', '-d', '-f', `${page}.zst`, '-o', `${page}.json`]);
  const original = fs.readFileSync(`${page}.json`, 'utf8');
  assert.match(original, /rhip-token:admin/);
  fs.writeFileSync(`${page}.json`, original.replaceAll('rhip-token:admin', 'nobody'));
  execFileSync('zstd', ['-q', '-f', `${page}.json`, '-o', `${page}.zst`]);
  execFileSync('sqlite3', [db, `UPDATE resource SET json = readfile('${page}.zst') WHERE type = 'Bundle' AND id = '000000000001'`]);
  // `rhip audit show` still reads every record (checking them is verify's work).
  const shown = execFileSync(RHIP_BIN, ['audit', 'show', '--data', server.data, '--count', '1000'], { encoding: 'utf8' });
  assert.equal(shown.trim().split('\n').length, records);
  assert.ok(shown.trim().split('\n').every((l) => JSON.parse(l).resourceType === 'AuditEvent'));
  const broken = spawnSync(RHIP_BIN, ['audit', 'verify', '--data', server.data], { encoding: 'utf8' });
  assert.equal(broken.status, 2, broken.stdout + broken.stderr);
  assert.match(broken.stdout, /BROKEN at record 1 /);
  fs.rmSync(server.data, { recursive: true, force: true });
});

test('an anchor file kept outside the data folder catches records cut off the end', async () => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'rhip-anchor-'));
  const anchors = path.join(elsewhere, 'audit.anchors');
  const server = await startServer(['--audit-anchor', anchors, '--audit-anchor-interval', '0']);
  for (let i = 0; i < 3; i++) assert.equal((await server.fetch(`${server.fhir}/Organization?_count=1`)).status, 200);
  await server.stop({ keepData: true }); // the last batch and a final anchor
  const verify = (...extra) => spawnSync(RHIP_BIN, ['audit', 'verify', '--data', server.data, ...extra], { encoding: 'utf8' });
  const ok = verify('--anchor', anchors);
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /anchor\(s\) match/);
  const head = ok.stdout.match(/chain head: (\d+:[0-9a-f]{64})/)[1];

  // Cut the last page off and make audit.head agree, as someone with the files could.
  const db = path.join(server.data, 'audit.db');
  const last = execFileSync('sqlite3', [db, "SELECT max(id) FROM resource WHERE type = 'Bundle'"], { encoding: 'utf8' }).trim();
  execFileSync('sqlite3', [db, `DELETE FROM resource_version WHERE res = (SELECT pk FROM resource WHERE type = 'Bundle' AND id = '${last}'); DELETE FROM resource WHERE type = 'Bundle' AND id = '${last}'`]);
  const cut = verify();
  assert.equal(cut.status, 2, cut.stdout);
  const [seq, hash] = cut.stdout.match(/chain head: (\d+):([0-9a-f]{64})/).slice(1);
  fs.writeFileSync(path.join(server.data, 'audit.head'), `${seq} ${hash}\n`);
  assert.equal(verify().status, 0, 'without an anchor the cut goes unnoticed');
  for (const anchor of [anchors, head]) {
    const caught = verify('--anchor', anchor);
    assert.equal(caught.status, 2, caught.stdout);
    assert.match(caught.stdout, /cut off/);
  }
  const bad = verify('--anchor', '12:xyz');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /SEQ:HASH/);
  fs.rmSync(server.data, { recursive: true, force: true });
  fs.rmSync(elsewhere, { recursive: true, force: true });
});
