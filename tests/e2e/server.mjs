// Starts `rhip serve` on a free port with a fresh data folder, for end-to-end tests.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const RHIP_BIN = process.env.RHIP_BIN || path.resolve('build/rhip');

// A token from `rhip token` (the operator's way): its last line is the token.
export function tokenFor(data, role, { org, person, sub, ttl = 3600 } = {}) {
  const args = ['token', '--data', data, '--role', role, '--ttl', String(ttl)];
  if (sub) args.push('--sub', sub);
  if (org) args.push('--org', org);
  if (person) args.push('--person', person);
  const out = execFileSync(RHIP_BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out.trim().split('\n').pop();
}

// options.data: reuse a data folder (a restart); otherwise a fresh one.
// options.env: extra environment variables for the server (e.g. RHIP_STORE_KEY).
export async function startServer(extraArgs = [], options = {}) {
  const data = options.data || fs.mkdtempSync(path.join(os.tmpdir(), 'rhip-e2e-'));
  const proc = spawn(RHIP_BIN, ['serve', '--data', data, '--port', '0', '--threads', '4', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(options.env || {}) },
  });
  let out = '';
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 20 s:\n' + out)), 20000);
    const onData = (chunk) => {
      out += chunk.toString();
      const m = out.match(/(https?):\/\/[0-9.]+:(\d+)\/fhir/);
      if (m) {
        clearTimeout(timer);
        resolve(`${m[1]}://127.0.0.1:${m[2]}`);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  // `rhip serve` prints its MLLP line before the HTTP one, so it is already in `out`.
  const mllp = out.match(/mllp listening on [0-9.]+:(\d+)/);
  // Security is on: the tests act as the operator unless they ask for another role.
  const token = tokenFor(data, 'admin');
  const auth = { Authorization: `Bearer ${token}` };
  return {
    token,
    auth,
    // fetch with the operator's token
    fetch: (url, init = {}) => fetch(url, { ...init, headers: { ...auth, ...(init.headers || {}) } }),
    tokenFor: (role, opts) => tokenFor(data, role, opts),
    base,
    fhir: base + '/fhir',
    mllpPort: mllp ? Number(mllp[1]) : undefined,
    data,
    proc,
    // SIGTERM (graceful); keepData leaves the folder for a restart.
    async stop({ keepData = false } = {}) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        if (!keepData) fs.rmSync(data, { recursive: true, force: true });
        return;
      }
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
      if (!keepData) fs.rmSync(data, { recursive: true, force: true });
    },
    // SIGKILL: a crash. The data folder stays.
    async crash() {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}
