/**
 * The Dockerfile, checked statically (no Docker daemon or registry here, so the image is never
 * built in a test): what it runs is the package's CLI; what it calls and copies exists and is not
 * kept out by .dockerignore; it copies every source folder tsc builds and every file the built
 * code reads beside dist/; and it is the image deploy/k8s/ expects (its name, uid 1000 = the pods'
 * fsGroup, the volumes' paths writable, `wami-bench` on PATH, the entrypoint taking the command as
 * its first argument). A rename on either side fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { CADDYFILE } from '../runner/caddy.js';
import { PAGE_SCRIPT_FILE } from '../report/html.js';
import { CLI } from './helpers/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (f: string): string => readFileSync(join(ROOT, f), 'utf8');

interface Instr {
  op: string;
  args: string;
  stage: number;
}

/** The Dockerfile's instructions, comments dropped and continuation lines joined, each with its stage (0-based). */
function instructions(text: string): Instr[] {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const out: Instr[] = [];
  let stage = -1;
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*?)\s*$/.exec(line);
    if (!m) {
      assert.equal(line.trim(), '', `an instruction: ${line}`);
      continue;
    }
    if (m[1] === 'FROM') stage++;
    out.push({ op: m[1]!, args: m[2]!.replace(/\s+/g, ' '), stage });
  }
  return out;
}

/** COPY's flags, sources and destination (the shell form, as this Dockerfile writes it). */
function copyParts(args: string): { flags: string[]; sources: string[]; dest: string } {
  const w = args.split(/\s+/);
  const flags = w.filter((x) => x.startsWith('--'));
  const rest = w.filter((x) => !x.startsWith('--'));
  return { flags, sources: rest.slice(0, -1), dest: rest.at(-1)! };
}

/** Whether .dockerignore keeps `path` (relative, no trailing slash) out of the build context: exact names, their subtrees, and *.ext. */
function ignored(path: string, rules: string[]): boolean {
  return rules.some((r) => {
    if (r.startsWith('*.')) return path.endsWith(r.slice(1));
    return path === r || path.startsWith(`${r}/`);
  });
}

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are checked field by field
type Obj = any;

function manifests(): Obj[] {
  const k = parseAllDocuments(read('deploy/k8s/kustomization.yaml'))[0]!.toJS() as Obj;
  return [k, ...(k.resources as string[]).flatMap((f) => parseAllDocuments(read(join('deploy/k8s', f))).map((d) => d.toJS() as Obj))].filter(Boolean);
}

/** Every pod template of the manifests (the Deployment's and the Job's). */
function podSpecs(objs: Obj[]): Obj[] {
  return objs.filter((o) => o.kind === 'Deployment' || o.kind === 'Job').map((o) => o.spec.template.spec);
}

const dockerfile = read('Dockerfile');
const ins = instructions(dockerfile);
const last = Math.max(...ins.map((i) => i.stage));
const final = ins.filter((i) => i.stage === last);
const finalOf = (op: string): Instr[] => final.filter((i) => i.op === op);
const runText = ins
  .filter((i) => i.op === 'RUN')
  .map((i) => i.args)
  .join(' ; ');

test('Debian 12 with Node 20, built in one stage and run from a slim one; the scripts it calls are package.json’s', () => {
  const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args);
  assert.equal(froms.length, 2);
  assert.match(froms[0]!, /^node:20-bookworm AS build$/, 'the build stage: Node 20 on Debian 12, with the compilers better-sqlite3 may need');
  assert.equal(froms[1], 'node:20-bookworm-slim', 'the image: Node 20 on Debian 12');
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; engines: { node: string }; bin: Record<string, string> };
  assert.match(pkg.engines.node, /^>=(\d+)$/);
  assert.ok(20 >= Number(/\d+/.exec(pkg.engines.node)![0]), "Node 20 meets package.json's engines");
  const scripts = [...runText.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!);
  assert.ok(scripts.includes('build'), 'npm run build');
  for (const s of scripts) assert.ok(s in pkg.scripts, `npm run ${s}: package.json has the script`);
  assert.match(runText, /npm ci\b/, 'installs from the lock file');
  assert.ok(existsSync(join(ROOT, 'package-lock.json')));
  assert.match(runText, /npm rebuild better-sqlite3/, 'the native module built after npm ci --ignore-scripts');
  assert.ok('better-sqlite3' in (JSON.parse(read('package.json')) as { dependencies: Record<string, string> }).dependencies);
  // Caddy only when asked for, from Debian
  assert.ok(
    finalOf('ARG').some((a) => a.args === 'WITH_CADDY=0'),
    'Caddy is optional, off by default',
  );
  assert.match(runText, /if \[ "\$WITH_CADDY" = 1 \]; then\s+apt-get update && apt-get install -y --no-install-recommends caddy/);
});

test('COPY: every source exists and reaches the build context; every folder tsc builds and every file dist/ reads beside it is copied', () => {
  const rules = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const must of ['node_modules', 'dist', '.git', 'results'])
    assert.ok(rules.includes(must), `.dockerignore keeps ${must} out (built or kept here, not sources)`);
  const copied: string[] = [];
  for (const c of ins.filter((i) => i.op === 'COPY')) {
    const p = copyParts(c.args);
    if (p.flags.some((f) => f.startsWith('--from='))) continue;
    // a folder keeps its place in the tree (the built code finds its files relative to dist/)
    if (p.sources.length === 1 && p.sources[0]!.endsWith('/')) assert.equal(p.dest, p.sources[0], `COPY ${c.args}: to the same path`);
    for (const src of p.sources) {
      const rel = src.replace(/\/$/, '');
      assert.ok(existsSync(join(ROOT, rel)), `COPY ${src}: it exists`);
      assert.ok(!ignored(rel, rules), `COPY ${src}: .dockerignore does not keep it out`);
      copied.push(rel);
    }
  }
  const inImage = (file: string): boolean => copied.some((c) => file === c || file.startsWith(`${c}/`));
  // what tsconfig.json builds, the tests apart
  const include = (JSON.parse(read('tsconfig.json')) as { include: string[] }).include;
  for (const pat of include) {
    const top = pat.split('/')[0]!;
    if (top === 'test') continue;
    assert.ok(inImage(top), `tsconfig.json builds ${pat}: the image copies ${top}`);
  }
  // what the built code reads from the package root at run time
  for (const f of [join(ROOT, 'package.json'), CADDYFILE, PAGE_SCRIPT_FILE]) {
    const rel = relative(ROOT, f);
    assert.ok(existsSync(f), `${rel} exists`);
    assert.ok(inImage(rel), `the image has ${rel} (read by dist/ at run time)`);
  }
  assert.ok(!inImage('test'), 'the tests stay out of the image');
  // the image is the build stage's package, whole
  const build = ins.find((i) => i.op === 'WORKDIR' && i.stage === 0)!.args;
  const fromBuild = finalOf('COPY')
    .map((c) => copyParts(c.args))
    .find((p) => p.flags.includes('--from=build'));
  assert.deepEqual(fromBuild && [fromBuild.sources, fromBuild.dest], [[build], build], 'the final stage copies the built package where it was built');
});

test('the entrypoint is the CLI (package.json bin), `wami-bench` is on PATH, and the Kubernetes manifests run that image as its user', () => {
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
  const pkgDir = ins.find((i) => i.op === 'WORKDIR' && i.stage === 0)!.args;
  const cli = `${pkgDir}/${pkg.bin['wami-bench']!}`;
  assert.equal(pkg.bin['wami-bench'], 'dist/runner/cli.js');
  assert.equal(relative(ROOT, CLI), pkg.bin['wami-bench'], 'the bin is the CLI the tests run');
  assert.deepEqual(JSON.parse(finalOf('ENTRYPOINT')[0]!.args), ['node', cli], 'exec form: the container args are the CLI’s');
  assert.match(runText, new RegExp(`chmod 0755 ${cli} && ln -s ${cli} /usr/local/bin/wami-bench`), '`wami-bench` on PATH');

  // the user: numeric (runAsNonRoot can check it), the fsGroup of every pod
  const user = finalOf('USER').at(-1)!.args;
  assert.equal(user, '1000:1000');
  const objs = manifests();
  const pods = podSpecs(objs);
  assert.equal(pods.length, 2);
  for (const p of pods) assert.equal(String(p.securityContext.fsGroup), user.split(':')[1], 'fsGroup = the image’s group');

  // the image's name: the manifests' and the one the Dockerfile says to build
  const k = objs[0];
  const names = new Set(pods.flatMap((p) => (p.containers as Obj[]).map((c) => c.image)));
  assert.deepEqual([...names], ['wami-bench']);
  assert.equal(k.images[0].name, 'wami-bench');
  assert.match(dockerfile, /docker build -t wami-bench \./);

  // the volumes' paths exist in the image and are the user's; the working directory is one of them
  const mounts = new Set(pods.flatMap((p) => (p.containers as Obj[]).flatMap((c) => (c.volumeMounts as Obj[]).map((m) => m.mountPath as string))));
  assert.deepEqual([...mounts].sort(), ['/data', '/results']);
  const chown = /chown -R 1000:1000 ((?:\/\S+\s*)+)/.exec(runText)![1]!.trim().split(/\s+/);
  const mkdir = /mkdir -p ((?:\/\S+\s*)+)/.exec(runText)![1]!.trim().split(/\s+/);
  for (const m of mounts) {
    assert.ok(chown.includes(m), `${m} belongs to uid 1000`);
    assert.ok(
      mkdir.some((d) => d === m || d.startsWith(`${m}/`)),
      `${m} exists in the image`,
    );
  }
  const workdir = finalOf('WORKDIR').at(-1)!.args;
  assert.ok(mounts.has(workdir) && chown.includes(workdir), 'the working directory (results/ by default) is writable and on a volume');

  // each container: the fleet's args start with a command of the CLI (the entrypoint's first argument); the runner's shell finds wami-bench on PATH
  const commands = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^ {2}([a-z]+) /.exec(l)?.[1])
    .filter(Boolean);
  for (const p of pods)
    for (const c of p.containers as Obj[]) {
      if (c.command) {
        assert.deepEqual(c.command, ['sh', '-c'], `${c.name}: a shell`);
        assert.match((c.args as string[]).join(' '), /^wami-bench [a-z]+ /, `${c.name}: runs wami-bench from PATH`);
        const cmd = /^wami-bench ([a-z]+) /.exec((c.args as string[]).join(' '))![1];
        assert.ok(commands.includes(cmd), `${c.name}: wami-bench ${cmd} is a command`);
      } else assert.ok(commands.includes(c.args[0]), `${c.name}: the entrypoint's first argument ${c.args[0]} is a command`);
    }
});
