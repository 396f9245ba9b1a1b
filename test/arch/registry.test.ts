/**
 * The core reaches the kinds through the registry alone (docs/architecture.md,
 * "Kinds"): src/dump, src/restore and src/api import from src/kinds only
 * kinds/index.ts's registry (KINDS, the views derived from it and the walks
 * over them), the contract's types, and a short list of services that are
 * not resources. Every other name is kind-specific knowledge in the core:
 * each one still there is listed below with the reason it is, and the list
 * only shrinks (an entry nothing imports any more fails too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { SRC, tsFiles } from './src-files.js';
import * as reg from '../../src/kinds/index.js';

const KINDS_DIR = join(SRC, 'kinds');

/** The registry: the one list, its views by scope, lookups and walks over them. */
const REGISTRY = new Set([
  'KINDS', 'FILE_KINDS', 'RESOURCE_KINDS', 'TASK_STATE_KINDS', 'THREAD_KINDS', 'fileKindFor', 'fileKindByType', 'handledNamespaces',
  'taskStateSteps', 'restoreTaskState', 'askThreads', 'dumpThreadCore', 'threadRestoreSteps', 'addressSpace', 'fileByPath',
  'dumpOptionDefaults', 'kindProbes', 'joinableNamespaces', 'bornThreadState',
]);

/** The contract: modules whose names (types, and the stateKey maker) the core and the kinds share. */
const CONTRACT_MODULES = ['types.ts', 'state-key.ts', 'kind.ts', 'options.ts', 'tree-views.ts', 'task/types.ts', 'space.ts', 'resource-kind.ts'].map((f) => join(KINDS_DIR, f));

/**
 * Services in src/kinds that are not resources, which the core uses as
 * such: by module (every name of it) or by name (through kinds/index.ts).
 */
const PAGES = 'the pages images (pagemap and pages-N, parent chains, page ranges): the page server, the lazy-pages daemon and dedup are programs over them, not the dump or restore of a resource';
const SERVICE_MODULES: Record<string, string> = {
  'steps.ts': 'step procedures: how injected calls run in one task or side by side in many; the core runs every kind through them',
  'install-fd.ts': 'putting an fd of ours into a task (SCM_RIGHTS, an open done inside it): the core installs inherited fds and enters a ghost cwd with it',
  'memory/parent-images.ts': PAGES,
  'memory/ranges.ts': PAGES,
  'memory/fill.ts': PAGES,
  'memory/dedup-punch.ts': PAGES,
  'memory/page-server-client.ts': 'the page server protocol: where a dump sends its pages instead of the images dir (the context carries it as it carries the dir), and how the lazy-pages daemon asks for them',
};
const SERVICE_NAMES: Record<string, string> = {
  installFd: SERVICE_MODULES['install-fd.ts'] as string,
  openOursInTask: SERVICE_MODULES['install-fd.ts'] as string,
  // The owner of an fd (F_SETOWN): every open file has one, whatever its kind, so the core dumps and restores it (issue 8, point 5).
  readFown: 'fown, an attribute of every open file whatever its kind: the core dumps and restores it',
  withFown: 'fown (above)',
  fownOf: 'fown (above)',
  fownUidsAsSeen: 'fown (above)',
  restoreFown: 'fown (above)',
  NO_FOWN: 'fown (above)',
  socketNetNsId: 'the /proc fd probe: the net namespace a socket fd belongs to, part of what the core learns of every fd (FdProbe.netNsId) before asking the kinds',
};

/**
 * Kind-specific names the core still calls, each with why it is not a hook
 * of its registry entry. Keyed "module: name" (the module as imported).
 * Empty since session 10: the core learns no kind by name; a name that
 * must come back here needs its reason, and the list only shrinks.
 */
const LEFT: Record<string, string> = {};

interface Imported { file: string; module: string; name: string; typeOnly: boolean }

/** Every name a file imports from a module under src/kinds (static imports and re-exports; `import *` as "*"). */
function kindImports(file: string): Imported[] {
  const text = readFileSync(file, 'utf8');
  const out: Imported[] = [];
  const re = /(?:^|[\s;])(import|export)(\s+type)?\s+([^'";]*?)\s+from\s*'([^']+)'/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[4] as string;
    if (!spec.startsWith('.')) continue;
    const module = normalize(join(dirname(file), spec.replace(/\.js$/, '.ts')));
    if (!module.startsWith(KINDS_DIR + '/')) continue;
    const stmtType = m[2] !== undefined;
    const clause = (m[3] as string).trim();
    const names: { name: string; typeOnly: boolean }[] = [];
    const braces = /\{([^}]*)\}/.exec(clause);
    if (braces) {
      for (const part of (braces[1] as string).split(',').map((s) => s.trim()).filter(Boolean)) {
        const typeOnly = stmtType || part.startsWith('type ');
        const name = part.replace(/^type\s+/, '').split(/\s+as\s+/)[0] as string;
        names.push({ name, typeOnly });
      }
    }
    const outside = clause.replace(/\{[^}]*\}/, '').replace(/,/g, ' ').trim();
    if (outside !== '') names.push({ name: '*', typeOnly: stmtType });
    for (const n of names) out.push({ file, module: relative(KINDS_DIR, module), ...n });
  }
  return out;
}

function exportedNames(file: string): Set<string> {
  const text = readFileSync(file, 'utf8');
  return new Set([...text.matchAll(/^export\s+(?:declare\s+)?(?:interface|type|function\*?|const|class|enum)\s+(\w+)/gm)].map((m) => m[1] as string));
}

const core = ['dump', 'restore', 'api'].flatMap((d) => tsFiles(join(SRC, d)));
const imports = core.flatMap(kindImports);
const contractNames = new Set(CONTRACT_MODULES.flatMap((f) => [...exportedNames(f)]));

/** Why an import is allowed, or undefined when it is kind-specific and not listed. */
function allowed(i: Imported): string | undefined {
  if (i.module in SERVICE_MODULES) return SERVICE_MODULES[i.module];
  if (CONTRACT_MODULES.includes(join(KINDS_DIR, i.module)) && contractNames.has(i.name)) return 'contract';
  if (i.module === 'index.ts') {
    if (REGISTRY.has(i.name)) return 'registry';
    if (contractNames.has(i.name)) return 'contract';
    if (i.name in SERVICE_NAMES) return SERVICE_NAMES[i.name];
  }
  return LEFT[`${i.module}: ${i.name}`];
}

test('src/dump, src/restore and src/api import from src/kinds only the registry, its contract and the listed services', () => {
  const bad = imports.filter((i) => allowed(i) === undefined).map((i) => `${relative(SRC, i.file)}: ${i.name} from kinds/${i.module}`);
  assert.deepEqual(bad, [], `kind-specific names in the core: make them hooks of their registry entry (kinds/index.ts KINDS):\n${bad.join('\n')}`);
});

test('every kind-specific name still in the core has its reason, and every listed one is still used', () => {
  for (const [k, why] of Object.entries(LEFT)) assert.ok(why.length > 20, `${k}: give the reason`);
  const used = new Set(imports.map((i) => `${i.module}: ${i.name}`));
  const stale = Object.keys(LEFT).filter((k) => !used.has(k));
  assert.deepEqual(stale, [], `no longer imported by the core: remove from LEFT in test/arch/registry.test.ts:\n${stale.join('\n')}`);
  const staleServices = Object.keys(SERVICE_NAMES).filter((n) => !imports.some((i) => i.name === n));
  assert.deepEqual(staleServices, [], `services no longer used by the core: remove from SERVICE_NAMES:\n${staleServices.join('\n')}`);
});

test('the registry is one list: every kind once, every facet from KINDS', () => {
  const names = reg.KINDS.map((k) => k.name);
  assert.equal(new Set(names).size, names.length, `duplicate kind names: ${names.join(', ')}`);
  for (const k of reg.KINDS) assert.ok(k.fd ?? k.tree ?? k.task ?? k.thread ?? k.space, `${k.name}: an entry with no scope runs nowhere`);
  assert.equal(reg.KINDS.filter((k) => k.space).length, 1, 'one kind has the address space (every task has exactly one)');
  assert.equal(reg.addressSpace(), reg.KINDS.find((k) => k.space)?.space);
  assert.equal(reg.FILE_KINDS.filter((k) => k.byPath).length, 1, 'one file kind names the files met by path outside fds');
  assert.deepEqual(reg.FILE_KINDS, reg.KINDS.flatMap((k) => (k.fd ? [k.fd] : [])));
  assert.deepEqual(reg.RESOURCE_KINDS, reg.KINDS.flatMap((k) => (k.tree ? [k.tree] : [])));
  assert.deepEqual(reg.TASK_STATE_KINDS, reg.KINDS.flatMap((k) => (k.task ? [k.task] : [])));
  assert.deepEqual(reg.THREAD_KINDS, reg.KINDS.flatMap((k) => (k.thread ? [k.thread] : [])));
  assert.equal(reg.THREAD_KINDS.filter((k) => k.ask).length, 1, 'one thread kind asks the thread questions');
  // A thread's credentials come after every thread kind that needs privilege (seccomp), the parent-death signal after them.
  const finals = reg.THREAD_KINDS.filter((k) => k.restore.final).map((k) => k.name);
  assert.ok(finals.indexOf('seccomp') < finals.indexOf('creds') && finals.indexOf('creds') < finals.indexOf('pdeath-signal'), finals.join(', '));
  // The order constraints of kinds/index.ts: user namespace first, mounts last, REG the last file kind.
  assert.equal(reg.RESOURCE_KINDS[0]?.name, 'user-ns');
  assert.equal(reg.RESOURCE_KINDS.at(-1)?.name, 'mnt');
  assert.equal(reg.FILE_KINDS.at(-1)?.type, 'REG');
});
