// Token revocation without a restart (issue 6): a token works, is revoked
// (`rhip token revoke` beside the running server, or POST /auth/revoke by an
// operator), then gets 401 with an OperationOutcome saying so, while other
// tokens keep working; the revocations survive a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { RHIP_BIN, startServer } from './server.mjs';

const jtiOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).jti;
const get = (server, token) => fetch(`${server.fhir}/Organization?_count=1`, { headers: { Authorization: `Bearer ${token}` } });

// The server re-reads the list within a second: poll (bounded) until it answers `status`.
async function eventually(server, token, status) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = await get(server, token);
    if (r.status === status || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
}

test('revoked tokens get 401 at once, other tokens keep working, and it survives a restart', async () => {
  let server = await startServer();
  const a = server.tokenFor('cdc', { sub: 'analyst-a' });
  const a2 = server.tokenFor('cdc', { sub: 'analyst-a' });
  const b = server.tokenFor('cdc', { sub: 'analyst-b' });
  const c = server.tokenFor('commission', { sub: 'analyst-c' });
  for (const t of [a, a2, b, c]) assert.equal((await get(server, t)).status, 200); // all verified and cached

  // One token, by its jti, from the CLI beside the running server.
  const out = execFileSync(RHIP_BIN, ['token', 'revoke', '--data', server.data, '--jti', jtiOf(a), '--reason', 'pasted in a chat'], { encoding: 'utf8' });
  assert.match(out, /revoked token/);
  const refused = await eventually(server, a, 401);
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate'), /invalid_token/);
  const oo = await refused.json();
  assert.equal(oo.resourceType, 'OperationOutcome');
  assert.match(oo.issue[0].diagnostics, /revoked.*pasted in a chat/);
  assert.equal((await get(server, a2)).status, 200); // the same subject's other token
  assert.equal((await get(server, b)).status, 200);

  // Every token of a subject, through the operator's endpoint (audited): effective at once.
  const nonAdmin = await fetch(`${server.base}/auth/revoke`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${c}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'subject=analyst-b',
  });
  assert.equal(nonAdmin.status, 403);
  const bad = await server.fetch(`${server.base}/auth/revoke`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'before=yesterday',
  });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).issue[0].diagnostics, /not a time/);
  const res = await server.fetch(`${server.base}/auth/revoke`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'subject=analyst-b&reason=left+the+CDC',
  });
  assert.equal(res.status, 200);
  const rule = (await res.json()).revoked;
  assert.equal(rule.subject, 'analyst-b');
  assert.equal(rule.by, 'rhip-token:admin');
  assert.equal((await get(server, b)).status, 401);
  assert.equal((await get(server, c)).status, 200);
  assert.equal((await get(server, server.token)).status, 200);

  // A restart keeps both revocations; a token issued afterwards works. Tokens carry their
  // issue time in whole seconds and a rule covers its own second too (the safe side), so
  // "afterwards" means from the next second on.
  await new Promise((res) => setTimeout(res, 1100));
  await server.stop({ keepData: true });
  server = await startServer([], { data: server.data });
  try {
    assert.equal((await get(server, a)).status, 401);
    assert.equal((await get(server, b)).status, 401);
    assert.equal((await get(server, a2)).status, 200);
    assert.equal((await get(server, server.tokenFor('cdc', { sub: 'analyst-b' }))).status, 200);
  } finally {
    await server.stop({ keepData: true });
  }
  // The revocation through the API is in the audit log (who, what, outcome).
  const rows = execFileSync(RHIP_BIN, ['audit', 'show', '--data', server.data, '--count', '100000'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const events = rows.trim().split('\n').map((l) => JSON.parse(l));
  const revokes = events.filter((e) => e.entity.some((x) => x.description === 'POST /auth/revoke'));
  assert.deepEqual(revokes.map((e) => [e.agent[0].type.text, e.outcome]).sort(), [['admin', '0'], ['admin', '4'], ['commission', '4']]);
  fs.rmSync(server.data, { recursive: true, force: true });
});
