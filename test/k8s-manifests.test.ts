/**
 * deploy/k8s (README.md, "Many hosts"), without a cluster: `kubectl kustomize` renders the base
 * and an overlay that changes N, and the rendered objects are checked for what a run depends on:
 * the fleet an Indexed Job of N completions, all running at once, each pod running
 * `wami-bench fleet --segment $(JOB_COMPLETION_INDEX)/N` with flags the CLI accepts; the runner
 * one pod (one SQLite writer) running `run --fleet external --segments N` with flags the CLI
 * accepts, waiting in the directory the segments write to, on a volume both mount; requests on
 * every container. The render needs kubectl with kustomize 5 (skipped, saying so, without it);
 * the source files are checked everywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { planSegment } from '../clients/plan.js';
import { fleetOptionsFromArgv, scenarioFleetOptions } from '../runner/commands/fleet.js';
import { externalFleetFlags } from '../runner/commands/run.js';
import { CLI } from './helpers/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BASE = join(ROOT, 'deploy', 'k8s');

// biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects are checked field by field
type Obj = any;

function parseYaml(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => {
      assert.deepEqual(d.errors, [], 'the YAML parses');
      return d.toJS() as Obj;
    })
    .filter((o) => o !== null);
}

/** Why the render cannot be tried here (null: it can). */
function kustomizeSkipReason(): string | null {
  const r = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 20_000 });
  if (r.error || r.status !== 0) return 'kubectl is not installed (the render needs `kubectl kustomize`; the source files are still checked)';
  const m = /Kustomize Version: v(\d+)/.exec(r.stdout);
  if (!m || Number(m[1]) < 5) return `kubectl's kustomize is older than v5 (${m ? `v${m[1]}` : 'unknown'}); deploy/k8s uses labels and replacements`;
  return null;
}

function render(dir: string): Obj[] {
  return parseYaml(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] }));
}

function one(objs: Obj[], kind: string, name?: string): Obj {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ''}`);
  return found[0];
}

/** $(VAR) expanded as the kubelet does, from the container's env (configMap keys and the completion index). */
function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\(([A-Z_]+)\)/g, (_, k: string) => {
    assert.ok(k in env, `$(${k}) is defined`);
    return env[k]!;
  });
}

/** The container's env as values: configMap keys from `params`, the completion index as given. */
function envOf(c: Obj, params: Record<string, string>, index: string, configMapName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env as Obj[]) {
    const ref = e.valueFrom?.configMapKeyRef;
    if (ref) {
      assert.equal(ref.name, configMapName, `${e.name} comes from the generated ConfigMap`);
      assert.ok(ref.key in params, `${e.name}: key ${ref.key} exists`);
      env[e.name] = params[ref.key]!;
    } else if (e.valueFrom?.fieldRef) {
      assert.equal(e.valueFrom.fieldRef.fieldPath, "metadata.annotations['batch.kubernetes.io/job-completion-index']");
      env[e.name] = index;
    } else env[e.name] = String(e.value);
  }
  return env;
}

/** Splits a shell command line into words (double quotes only, as the manifest uses). */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

let runFlags: Set<string> | null = null;
/** The flags `wami-bench run --help` lists. */
function runHelpFlags(): Set<string> {
  runFlags ??= new Set(execFileSync(process.execPath, [CLI, 'run', '--help'], { encoding: 'utf8' }).match(/--[a-z][a-z-]*/g));
  return runFlags;
}

/** Checks the whole render of N segments. */
async function checkRendered(objs: Obj[], segments: number): Promise<void> {
  // every object in the namespace, labelled as part of wami-bench
  one(objs, 'Namespace', 'wami-bench');
  for (const o of objs) {
    if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'wami-bench', `${o.kind} ${o.metadata.name} namespace`);
    assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'wami-bench', `${o.kind} ${o.metadata.name} label`);
  }
  assert.deepEqual(objs.map((o) => o.kind).sort(), [
    'ConfigMap',
    'Deployment',
    'Job',
    'Namespace',
    'PersistentVolumeClaim',
    'PersistentVolumeClaim',
    'Service',
  ]);
  const cm = one(objs, 'ConfigMap');
  assert.match(cm.metadata.name, /^wami-bench-params-[a-z0-9]+$/, 'a generated name: a changed parameter makes new pods');
  const params = cm.data as Record<string, string>;
  assert.equal(params.SEGMENTS, String(segments));

  // the fleet: an Indexed Job of N completions, all at once, never retried (a segment run twice would load its boards twice)
  const job = one(objs, 'Job', 'wami-fleet');
  assert.equal(job.spec.completionMode, 'Indexed');
  assert.equal(job.spec.completions, segments);
  assert.equal(job.spec.parallelism, segments, 'all segments at once: they meet at the barrier');
  assert.equal(job.spec.backoffLimit, 0);
  assert.equal(job.spec.template.spec.restartPolicy, 'Never');
  const fc = job.spec.template.spec.containers[0];
  assert.equal(fc.image, 'wami-bench:latest');
  assert.ok(fc.resources.requests.cpu && fc.resources.requests.memory, 'the fleet requests CPU and memory');
  const segArg = fc.args.indexOf('--segment');
  assert.ok(segArg >= 0 && fc.args[segArg + 1] === '$(JOB_COMPLETION_INDEX)/$(SEGMENTS)', `--segment I/N in ${fc.args.join(' ')}`);
  // the flags, expanded as pod I would get them, are the CLI's; each pod runs its own whole boards
  const tmp = mkdtempSync(join(tmpdir(), 'wami-k8s-'));
  try {
    const resultsMount = (c: Obj): string => (c.volumeMounts as Obj[]).find((m) => m.name === 'results').mountPath;
    const barrier = fc.args[fc.args.indexOf('--barrier') + 1] as string;
    assert.ok(barrier.startsWith(`${resultsMount(fc)}/`), 'the barrier is on the shared volume');
    const users: number[] = [];
    for (let i = 0; i < segments; i++) {
      const env = envOf(fc, params, String(i), cm.metadata.name);
      // the volume's path stands for a temporary directory here (parsing makes the barrier directory)
      const argv = (fc.args as string[]).map((a) => expand(a, env).replace(resultsMount(fc), tmp));
      assert.equal(argv.shift(), 'fleet', 'the image runs wami-bench: the first argument is the command');
      const parsed = fleetOptionsFromArgv(argv)!;
      assert.deepEqual(parsed.opts.segment, { index: i, of: segments });
      assert.equal(parsed.barrier?.dir, barrier.replace(resultsMount(fc), tmp));
      assert.ok(parsed.waitServerSec > 0, 'the fleet waits for the server it is started beside');
      const o = await scenarioFleetOptions(parsed.scenario!, parsed.opts);
      assert.equal(o.scenario?.name, params.SCENARIO);
      users.push(planSegment(o.connections, o.perBoard, i, segments).users);
      if (i === segments - 1)
        assert.equal(
          users.reduce((a, b) => a + b, 0),
          o.connections,
          "the N pods' users are the whole fleet",
        );
    }

    // the runner: one pod on the SQLite file, its Service, waiting for the N segments where the fleet writes them
    const dep = one(objs, 'Deployment', 'wami-server');
    assert.equal(dep.spec.replicas, 1);
    assert.equal(dep.spec.strategy.type, 'Recreate', 'never two pods on one SQLite file');
    const pod = dep.spec.template;
    for (const [k, v] of Object.entries(dep.spec.selector.matchLabels as Record<string, string>)) assert.equal(pod.metadata.labels[k], v, `selector ${k}`);
    const rc = pod.spec.containers[0];
    assert.deepEqual(rc.resources.requests, rc.resources.limits, 'the server under test: requests = limits (Guaranteed QoS)');
    assert.ok(rc.resources.requests.cpu && rc.resources.requests.memory);
    const svc = one(objs, 'Service', 'wami-server');
    for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) assert.equal(pod.metadata.labels[k], v, `service selector ${k}`);
    const port = (rc.ports as Obj[]).find((p) => p.name === svc.spec.ports[0].targetPort);
    assert.ok(port, 'the Service targets the container port by name');
    assert.equal(rc.readinessProbe.httpGet.path, '/healthz');
    const renv = envOf(rc, params, 'x', cm.metadata.name);
    assert.equal(new URL(renv.SERVER_URL!).port, String(svc.spec.ports[0].port), 'the fleet connects to the Service port');
    assert.equal(new URL(renv.SERVER_URL!).hostname, svc.metadata.name, "the fleet connects to the Service's name");
    const script = (rc.args as string[]).join(' ');
    const line = expand(/wami-bench run [^;]*/.exec(script)![0], renv);
    const w = words(line).slice(2);
    const flags = w.filter((x) => x.startsWith('--'));
    const known = runHelpFlags();
    for (const f of flags) assert.ok(known.has(f), `wami-bench run knows ${f}`);
    const val = (f: string): string | undefined => (w.includes(f) ? w[w.indexOf(f) + 1] : undefined);
    assert.equal(w[0], params.SCENARIO);
    assert.equal(val('--fleet'), 'external');
    assert.equal(val('--segments'), String(segments));
    assert.equal(val('--port'), String(port.containerPort));
    assert.equal(val('--segment-dir'), barrier, 'the runner waits where the segments write');
    const values: Record<string, unknown> = {};
    for (const f of flags) values[f.slice(2)] = val(f)?.startsWith('--') === false ? val(f)!.replace(resultsMount(rc), tmp) : true;
    const ext = externalFleetFlags(values, w[0]!, undefined)!;
    assert.equal(ext.segments, segments);
    assert.equal(ext.host, '0.0.0.0', 'reachable from the other pods');
    // both pods mount the same claim at the same path; the claim is shared across nodes, the database's is not
    const claimOf = (spec: Obj, c: Obj): string => {
      const m = (c.volumeMounts as Obj[]).find((x) => x.name === 'results');
      return (spec.volumes as Obj[]).find((v) => v.name === m.name).persistentVolumeClaim.claimName;
    };
    assert.equal(claimOf(job.spec.template.spec, fc), claimOf(pod.spec, rc));
    assert.equal(resultsMount(fc), resultsMount(rc));
    const pvc = (name: string): Obj => one(objs, 'PersistentVolumeClaim', name);
    assert.deepEqual(pvc(claimOf(pod.spec, rc)).spec.accessModes, ['ReadWriteMany']);
    const dataMount = (rc.volumeMounts as Obj[]).find((m) => (val('--out') ?? '').startsWith(`${m.mountPath}/`));
    assert.ok(dataMount, 'the results and the kept database are on a volume');
    const dataClaim = (pod.spec.volumes as Obj[]).find((v) => v.name === dataMount.name).persistentVolumeClaim.claimName;
    assert.deepEqual(pvc(dataClaim).spec.accessModes, ['ReadWriteOnce'], 'SQLite in WAL mode on a node-local volume');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const skip = kustomizeSkipReason();
if (skip) process.stderr.write(`k8s render test skipped: ${skip}\n`);

test('kubectl kustomize deploy/k8s: an Indexed Job of N fleet segments, the runner waiting for N, flags the CLI accepts', { skip: skip ?? false }, async () => {
  await checkRendered(render(BASE), 2);
});

test('an overlay that sets SEGMENTS=3 (with the segments component, as README.md shows) changes N everywhere: the configMap, the completions, the parallelism', {
  skip: skip ?? false,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-overlay-'));
  try {
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      [
        'resources:',
        `  - ${relative(dir, BASE)}`,
        'components:',
        `  - ${relative(dir, join(BASE, 'segments'))}`,
        'configMapGenerator:',
        '  - name: wami-bench-params',
        '    behavior: merge',
        '    literals: [SEGMENTS=3]',
        '',
      ].join('\n'),
    );
    await checkRendered(render(dir), 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the source manifests parse and name the objects the kustomization lists (no kubectl needed)', () => {
  const k = parseYaml(readFileSync(join(BASE, 'kustomization.yaml'), 'utf8'))[0];
  const objs = (k.resources as string[]).flatMap((f) => parseYaml(readFileSync(join(BASE, f), 'utf8')));
  const job = one(objs, 'Job', 'wami-fleet');
  assert.equal(job.spec.completionMode, 'Indexed');
  const segments = Number(/SEGMENTS=(\d+)/.exec((k.configMapGenerator[0].literals as string[]).join(' '))![1]);
  assert.equal(job.spec.completions, segments, 'the default N is the same in the Job and the parameters');
  assert.deepEqual(k.components, ['segments']);
  const c = parseYaml(readFileSync(join(BASE, 'segments', 'kustomization.yaml'), 'utf8'))[0];
  assert.equal(c.kind, 'Component');
  assert.deepEqual(c.replacements[0].source, { kind: 'ConfigMap', name: 'wami-bench-params', fieldPath: 'data.SEGMENTS' });
  assert.deepEqual(c.replacements[0].targets[0].fieldPaths, ['spec.completions', 'spec.parallelism'], 'an overlay changes N in one place');
  one(objs, 'Deployment', 'wami-server');
  one(objs, 'Service', 'wami-server');
});
