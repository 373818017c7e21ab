/**
 * The shape of the code: every relative import of the TypeScript sources, followed. No import cycle
 * anywhere (type-only imports count: a cycle of types is still a cycle of design), and every folder
 * imports only the layers CONTRIBUTING.md allows it (downward). Reads the sources, not dist/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What each top-level folder may import besides itself. The root's index.ts is the library: it may import anything below. */
export const LAYERS: Record<string, readonly string[]> = {
  protocol: [],
  model: ['protocol'],
  servers: ['protocol', 'model'],
  clients: ['protocol', 'model'],
  scenarios: ['protocol', 'model'],
  report: ['protocol', 'model', 'scenarios'],
  micro: ['protocol', 'model', 'servers', 'clients', 'report'],
  runner: ['protocol', 'model', 'servers', 'clients', 'scenarios', 'report', 'micro'],
  '.': ['protocol', 'model', 'servers', 'clients', 'scenarios', 'report', 'micro', 'runner'],
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE =
  /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;(])import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

/** The relative imports of a source text (static, re-exports, dynamic with a literal). Comments are stripped first. */
export function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const out: string[] = [];
  for (const m of code.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec?.startsWith('.')) out.push(spec);
  }
  return out;
}

function graph(): Map<string, string[]> {
  const files = [
    ...Object.keys(LAYERS)
      .filter((d) => d !== '.')
      .flatMap((d) => sources(join(ROOT, d))),
    ...['index.ts'].map((f) => join(ROOT, f)).filter(existsSync),
  ];
  const g = new Map<string, string[]>();
  for (const f of files) {
    const from = relative(ROOT, f);
    const deps = importsOf(readFileSync(f, 'utf8')).map((spec) => {
      const target = normalize(join(dirname(from), spec)).replace(/\.js$/, '.ts');
      return target;
    });
    g.set(from, deps);
  }
  return g;
}

/** Strongly connected components with more than one file (or a file importing itself): the cycles. Tarjan's algorithm. */
export function cyclesOf(g: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const layerOf = (file: string): string => (file.includes('/') ? file.split('/')[0]! : '.');

test('the import scanner sees static, type-only, re-export and dynamic imports, not comments', () => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b/b.js';",
    "export { c } from './c.js';",
    "export * from './d.js';",
    "const e = await import('./e.js');",
    "import './f.js';",
    "// import { x } from './commented.js';",
    "/* import { y } from './block.js'; */",
    "import { z } from 'zod';",
  ].join('\n');
  assert.deepEqual(importsOf(text), ['./a.js', '../b/b.js', './c.js', './d.js', './e.js', './f.js']);
});

test('the cycle finder finds a cycle, and only a cycle', () => {
  const g = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', ['a.ts']],
  ]);
  assert.deepEqual(cyclesOf(g), [['a.ts', 'b.ts', 'c.ts']]);
  assert.deepEqual(
    cyclesOf(
      new Map([
        ['a.ts', ['b.ts']],
        ['b.ts', []],
      ]),
    ),
    [],
  );
});

test('no import cycle anywhere in the sources', () => {
  const cycles = cyclesOf(graph());
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.map((c) => `  ${c.join(' -> ')}`).join('\n')}`);
});

test('every folder imports only the layers below it (CONTRIBUTING.md)', () => {
  const bad: string[] = [];
  for (const [from, deps] of graph()) {
    const own = layerOf(from);
    const allowed = LAYERS[own] ?? [];
    for (const to of deps) {
      const other = layerOf(to);
      if (other !== own && !allowed.includes(other)) bad.push(`${from} imports ${to} (${own} may import ${allowed.join(', ') || 'nothing of the project'})`);
    }
  }
  assert.deepEqual(bad, []);
});
