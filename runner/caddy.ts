/**
 * Caddy 2 in front of the server under test (scenario `via: 'caddy'`): started with execa from the
 * project's Caddyfile, TLS from Caddy's internal CA on a loopback address. The fleet trusts the CA's
 * root certificate through its `ca` option; verification is never turned off.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killTree, spawnChild, type Exit } from './child.js';

export const CADDYFILE = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'Caddyfile');

export interface RunningCaddy {
  pid: number;
  port: number;
  wssUrl: string;
  httpsUrl: string;
  /** PEM of the internal CA's root certificate. */
  ca: string;
  isRunning: () => boolean;
  exited: Promise<Exit>;
  output: () => string;
  stop: (graceMs?: number) => Promise<Exit & { forced: boolean }>;
}

/** A free TCP port on `host` (bound, then released). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** GET path over TLS trusting only `ca`; resolves to the status code. */
export function httpsGet(url: string, ca: string, timeoutMs = 3000): Promise<number> {
  return new Promise((res, rej) => {
    const req = request(url, { ca, timeout: timeoutMs }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

export async function startCaddy(opts: { upstream: string; host?: string; storageDir: string; cpus?: string; timeoutMs?: number }): Promise<RunningCaddy> {
  const host = opts.host ?? '127.0.0.1';
  const port = await freePort(host);
  mkdirSync(opts.storageDir, { recursive: true });
  const env = {
    WAMI_CADDY_HOST: host,
    WAMI_CADDY_PORT: String(port),
    WAMI_UPSTREAM: opts.upstream,
    WAMI_CADDY_STORAGE: opts.storageDir,
    XDG_DATA_HOME: opts.storageDir,
    XDG_CONFIG_HOME: opts.storageDir,
  };
  const args = ['run', '--config', CADDYFILE, '--adapter', 'caddyfile'];
  const child = spawnChild('caddy', args, { env, ...(opts.cpus ? { cpus: opts.cpus } : {}) });
  const { pid, exited } = child;
  const rootCrt = join(opts.storageDir, 'pki', 'authorities', 'local', 'root.crt');
  const httpsUrl = `https://${host}:${port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 20000);
  let ca = '';
  let last = '';
  while (Date.now() < deadline) {
    if (!child.isRunning()) throw new Error(`caddy exited before it was ready. Output:\n${child.output().slice(-3000)}`);
    if (!ca && existsSync(rootCrt)) ca = readFileSync(rootCrt, 'utf8');
    if (ca) {
      try {
        const code = await httpsGet(`${httpsUrl}/healthz`, ca);
        if (code === 200) break;
        last = `HTTP ${code}`;
      } catch (e) {
        last = (e as Error).message;
      }
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  if (Date.now() >= deadline) {
    killTree(pid);
    await exited;
    throw new Error(
      `caddy not ready within ${opts.timeoutMs ?? 20000} ms (last: ${last || 'no root certificate yet'}). Output:\n${child.output().slice(-3000)}`,
    );
  }
  return {
    pid,
    port,
    wssUrl: `wss://${host}:${port}/ws`,
    httpsUrl,
    ca,
    isRunning: child.isRunning,
    exited,
    output: child.output,
    stop: (graceMs = 10000) => child.stop(graceMs),
  };
}
