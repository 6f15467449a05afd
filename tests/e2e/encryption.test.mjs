// Encryption at rest with the real binary: `rhip serve --encrypt` keeps a data
// folder whose files hold no patient data in plaintext, refuses to start without
// the key, with a wrong key or without --encrypt, and serves the same records again
// with the right key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RHIP_BIN, startServer } from './server.mjs';

const KEY = 'a3f1c2d4e5b60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00';
const OTHER_KEY = '0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0';
const ID_NUMBER = '330402198807150019'; // synthetic
const NAME = 'Ximen Qingyun';

// Every file under dir, recursively.
function filesUnder(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]);
}

function serveOnce(data, args, env) {
  return spawnSync(RHIP_BIN, ['serve', '--data', data, '--port', '0', ...args], {
    encoding: 'utf8',
    env: { ...process.env, RHIP_STORE_KEY: '', ...env },
    timeout: 20000,
  });
}

test('serve --encrypt: no plaintext on disk, clear refusals, same data with the right key', async () => {
  const server = await startServer(['--encrypt', '--mllp-port', '0'], { env: { RHIP_STORE_KEY: KEY } });
  const patient = {
    resourceType: 'Patient',
    identifier: [
      { system: 'urn:oid:2.16.156.10011.1.3', value: ID_NUMBER },
      { system: 'http://rhip.health/id/mrn/47000001', value: 'MRN-ENC-1' },
    ],
    name: [{ text: NAME }],
    birthDate: '1988-07-15',
    gender: 'male',
  };
  const res = await server.fetch(`${server.fhir}/Patient`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/fhir+json' },
    body: JSON.stringify(patient),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const created = await res.json();
  assert.equal((await server.fetch(`${server.fhir}/Patient/${created.id}`)).status, 200);
  await server.stop({ keepData: true });
  const data = server.data;

  try {
    // Every store of the folder is encrypted; no file holds the ID number or the name.
    for (const db of ['rhip.db', 'audit.db', 'hl7-inbox.db']) {
      const head = fs.readFileSync(path.join(data, db)).subarray(0, 8).toString('latin1');
      assert.equal(head, 'rhip-gcm', `${db} is not encrypted`);
    }
    for (const f of filesUnder(data)) {
      const bytes = fs.readFileSync(f).toString('latin1');
      assert.ok(!bytes.includes(ID_NUMBER), `${f} holds the ID number in plaintext`);
      assert.ok(!bytes.includes(NAME), `${f} holds the name in plaintext`);
    }

    // Without --encrypt, without a key, with the wrong key: refused, with what to do.
    const plain = serveOnce(data, []);
    assert.equal(plain.status, 1, plain.stdout + plain.stderr);
    assert.match(plain.stderr, /rhip\.db is encrypted: run with --encrypt/);
    const nokey = serveOnce(data, ['--encrypt']);
    assert.equal(nokey.status, 1, nokey.stdout + nokey.stderr);
    assert.match(nokey.stderr, /--encrypt needs the store key: set RHIP_STORE_KEY/);
    const wrong = serveOnce(data, ['--encrypt'], { RHIP_STORE_KEY: OTHER_KEY });
    assert.equal(wrong.status, 1, wrong.stdout + wrong.stderr);
    assert.match(wrong.stderr, /does not open store .*rhip\.db \(it was encrypted with another key\); nothing was changed/);
    assert.ok(!wrong.stderr.includes(OTHER_KEY) && !wrong.stderr.includes(KEY), 'a key was printed');

    // A key file inside the data folder is refused; one outside it (0600) works.
    const inside = path.join(data, 'store.key');
    fs.writeFileSync(inside, KEY + '\n', { mode: 0o600 });
    const insideRun = serveOnce(data, ['--encrypt', '--key-file', inside]);
    assert.equal(insideRun.status, 1);
    assert.match(insideRun.stderr, /inside the data folder/);
    fs.rmSync(inside);
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rhip-e2e-key-'));
    const keyFile = path.join(keyDir, 'store.key');
    fs.writeFileSync(keyFile, Buffer.from(KEY, 'hex').toString('base64') + '\n', { mode: 0o600 });

    // The right key (base64 in a key file this time): the same record, and the audit chain verifies.
    const again = await startServer(['--encrypt', '--key-file', keyFile], { data });
    const read = await again.fetch(`${again.fhir}/Patient/${created.id}`);
    assert.equal(read.status, 200);
    assert.equal((await read.json()).name[0].text, NAME);
    await again.stop({ keepData: true });
    const verify = spawnSync(RHIP_BIN, ['audit', 'verify', '--data', data, '--encrypt', '--key-file', keyFile], {
      encoding: 'utf8',
    });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    fs.rmSync(keyDir, { recursive: true, force: true });
  } finally {
    fs.rmSync(data, { recursive: true, force: true });
  }
});
