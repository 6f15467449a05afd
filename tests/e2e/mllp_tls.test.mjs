// HL7 v2 over MLLP inside TLS (`rhip serve --mllp-port P --tls-cert C --tls-key K`),
// with node's own TLS client: a message gets AA and is stored; a plain MLLP client
// on the TLS port is closed without an ACK and without harming the TLS connection
// beside it. With --mllp-client-ca (mutual TLS) a client needs a certificate from
// that CA, and may only send its own institution's messages (certificate CN = MSH-4).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { startServer } from './server.mjs';

let dir;
const f = (name) => path.join(dir, name);
const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rhip-mllp-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  // The server's certificate (self-signed, localhost).
  openssl('req', '-x509', ...ec, '-days', '1', '-subj', '/CN=localhost', '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', f('server.key'), '-out', f('server.pem'));
  // The region's CA for institutions' systems, and two institutions' client certificates.
  openssl('req', '-x509', ...ec, '-days', '1', '-subj', '/CN=rhip test institutions CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  for (const org of ['330402-H01', '330402-T1']) {
    openssl('req', '-new', ...ec, '-subj', `/CN=${org}`, '-keyout', f(`${org}.key`), '-out', f(`${org}.csr`));
    openssl('x509', '-req', '-in', f(`${org}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-days', '1', '-out', f(`${org}.pem`));
  }
  // A client certificate no CA of the region issued.
  openssl('req', '-x509', ...ec, '-days', '1', '-subj', '/CN=330402-H01', '-keyout', f('rogue.key'), '-out', f('rogue.pem'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const adt = (control, sender = '330402-H01') =>
  `MSH|^~\\&|HIS|${sender}|RHIP|330400|20240105083000||ADT^A04^ADT_A01|${control}|P|2.5|||||CHN|UNICODE UTF-8\r` +
  `PID|1||${control}^^^${sender}^MR||张^伟||19800101|M\r`;
const frame = (msg) => Buffer.concat([Buffer.from([0x0b]), Buffer.from(msg, 'utf8'), Buffer.from([0x1c, 0x0d])]);
const msa = (ack) => (ack.match(/\rMSA\|([A-Z]{2})\|/) || [])[1];

// An MLLP connection inside TLS: send(msg) resolves with the ACK's text. Rejects
// when the server closes or refuses the connection before an ACK.
function mllpTls(port, extra = {}) {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: fs.readFileSync(f('server.pem')), ...extra });
    let buf = Buffer.alloc(0);
    let waiter = null;
    const fail = (e) => {
      if (waiter) waiter.reject(e);
      waiter = null;
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf(0x1c);
      if (end >= 0 && waiter) {
        const ack = buf.subarray(buf.indexOf(0x0b) + 1, end).toString('utf8');
        buf = buf.subarray(end + 2);
        waiter.resolve(ack);
        waiter = null;
      }
    });
    sock.on('error', (e) => { fail(e); reject(e); });
    sock.on('close', () => fail(new Error('closed by the server')));
    sock.once('secureConnect', () =>
      resolve({
        send: (msg) => new Promise((res, rej) => { waiter = { resolve: res, reject: rej }; sock.write(frame(msg)); }),
        close: () => sock.end(),
      }));
  });
}

function httpsJson(server, pathAndQuery) {
  return new Promise((resolve, reject) => {
    https
      .get(`${server.base}${pathAndQuery}`, { ca: fs.readFileSync(f('server.pem')), headers: server.auth }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
      })
      .on('error', reject);
  });
}

test('MLLP over TLS: AA for a message, stored; a plain client is closed without harming the TLS one', async () => {
  const server = await startServer(['--mllp-port', '0', '--tls-cert', f('server.pem'), '--tls-key', f('server.key')]);
  try {
    assert.ok(server.base.startsWith('https://'));
    const conn = await mllpTls(server.mllpPort);
    assert.equal(msa(await conn.send(adt('TLS-1'))), 'AA');
    // A plain-text MLLP sender on the TLS port: closed, no ACK, nothing stored.
    const plain = await new Promise((resolve) => {
      const s = net.connect(server.mllpPort, '127.0.0.1', () => s.write(frame(adt('PLAIN-1'))));
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('error', () => {});
      s.on('close', () => resolve(got));
    });
    assert.ok(!plain.includes('MSA'), 'no ACK for a plain client: ' + JSON.stringify(plain));
    // The TLS connection beside it still works.
    assert.equal(msa(await conn.send(adt('TLS-2'))), 'AA');
    conn.close();
    // AA means stored: both TLS messages are applied, the plain one never arrived.
    const deadline = Date.now() + 20000;
    let found;
    while (Date.now() < deadline) {
      found = await httpsJson(server, '/fhir/Patient?identifier=http://rhip.health/id/mrn/330402-H01|TLS-2&_total=accurate');
      if (found.body.total === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(found.body.total, 1);
    const plainOne = await httpsJson(server, '/fhir/Patient?identifier=http://rhip.health/id/mrn/330402-H01|PLAIN-1&_total=accurate');
    assert.equal(plainOne.body.total, 0);
  } finally {
    await server.stop();
  }
});

test('MLLP with client certificates: only the region CA\'s certificates, and only for their own institution', async () => {
  const server = await startServer(['--mllp-port', '0', '--tls-cert', f('server.pem'), '--tls-key', f('server.key'),
    '--mllp-client-ca', f('ca.pem')]);
  try {
    const cert = (name) => ({ cert: fs.readFileSync(f(`${name}.pem`)), key: fs.readFileSync(f(`${name}.key`)) });
    const h01 = await mllpTls(server.mllpPort, cert('330402-H01'));
    assert.equal(msa(await h01.send(adt('MTLS-1'))), 'AA');
    // The same certificate sending as another institution: AR naming MSH-4.
    const other = await h01.send(adt('MTLS-2', '330402-T1'));
    assert.equal(msa(other), 'AR');
    assert.match(other, /client certificate/);
    h01.close();
    // Without a certificate, or with one the region's CA did not issue: no ACK, the connection fails.
    for (const extra of [{}, cert('rogue')]) {
      await assert.rejects(async () => {
        const c = await mllpTls(server.mllpPort, extra);
        await c.send(adt('MTLS-3'));  // TLS 1.3: the server's refusal arrives after the client's handshake
      });
    }
    // The other institution, with its own certificate, is fine.
    const t1 = await mllpTls(server.mllpPort, cert('330402-T1'));
    assert.equal(msa(await t1.send(adt('MTLS-4', '330402-T1'))), 'AA');
    t1.close();
  } finally {
    await server.stop();
  }
});

test('--mllp-client-ca without --tls-cert is refused at start', async () => {
  await assert.rejects(startServer(['--mllp-port', '0', '--mllp-client-ca', f('ca.pem')]), /needs --tls-cert/);
});
