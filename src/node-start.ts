/**
 * What Node does at its start that criu-ts has no use for.
 *
 * Node 20 reads and parses every certificate of NODE_EXTRA_CA_CERTS before
 * the first line of JavaScript runs (on a machine that names the system's
 * bundle there, 140 certificates: about 35 ms of CPU, more than the rest
 * of Node's own start). criu-ts never opens a TLS connection, so the
 * launchers (bin/criu-ts, bin/crit-ts) start node without it and keep its
 * value under SAVED_CA_ENV; bin/load-bundle.cjs puts it back into
 * process.env before anything runs, so every program criu-ts starts
 * (action scripts, ip, nft) sees the environment its caller gave.
 * A node process of our own (an RPC worker, the page-server daemon) is
 * started the launchers' way again: ownNodeEnv().
 *
 * The launchers also start node with MALLOC_ARENA_MAX=1 (the caller's
 * value kept under SAVED_ARENA_ENV, put back the same way): glibc gives
 * every thread that allocates an arena of its own, and V8's compiler and
 * GC helper threads held 12 MiB of them in a 1000-thread dump (peak RSS
 * 96 -> 81 MiB, no CPU cost seen; docs/performance.md). mallopt() from
 * JavaScript comes too late: those threads have their arenas by then.
 * And with MALLOC_MMAP_THRESHOLD_=131072 (the caller's under
 * SAVED_MMAP_ENV): glibc's starting threshold, which it would otherwise
 * raise to the size of each big block it frees (bin/criu-ts says why).
 * The saved names are short: the launcher's "#!" line is near the
 * kernel's 256 bytes.
 */

/** Where the launchers keep NODE_EXTRA_CA_CERTS while node starts (load-bundle.cjs names it too). */
export const SAVED_CA_ENV = 'CRIU_TS_CA';

/** Where the launchers keep the caller's MALLOC_ARENA_MAX (load-bundle.cjs names it too). */
export const SAVED_ARENA_ENV = 'CRIU_TS_ARENA';

/** Where the launchers keep the caller's MALLOC_MMAP_THRESHOLD_ (load-bundle.cjs names it too). */
export const SAVED_MMAP_ENV = 'CRIU_TS_MMAP';

/** glibc's own starting mmap threshold, which the launchers fix (bin/criu-ts). */
const MMAP_THRESHOLD = '131072';

/** `env` for a node process that runs criu-ts: NODE_EXTRA_CA_CERTS kept aside, one malloc arena and a fixed mmap threshold, as the launchers do. */
export function ownNodeEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  const ca = out['NODE_EXTRA_CA_CERTS'];
  delete out['NODE_EXTRA_CA_CERTS'];
  if (ca !== undefined && ca !== '') out[SAVED_CA_ENV] = ca;
  out[SAVED_ARENA_ENV] = out['MALLOC_ARENA_MAX'] ?? '';
  out['MALLOC_ARENA_MAX'] = '1';
  out[SAVED_MMAP_ENV] = out['MALLOC_MMAP_THRESHOLD_'] ?? '';
  out['MALLOC_MMAP_THRESHOLD_'] = MMAP_THRESHOLD;
  return out;
}

/**
 * `node -e` text that runs `fn()` of the module at process.argv[1] (a file
 * URL: a module's import.meta.url): bundled, that file is bin/load-bundle.cjs's
 * one function expression, compiled here with CommonJS's arguments as the
 * loader does (scripts/bundle.mjs), and `fn` must be exported by the
 * bundle's entry (cli/main.ts); unbundled, the ES module is imported. How the
 * guardian and the message-queue keeper, helpers that must outlive criu-ts,
 * start node on our own code.
 */
export function nodeEntry(fn: string): string {
  return [
    'const p = require("url").fileURLToPath(process.argv[1]);',
    'if (p.endsWith(".cjs")) {',
    ' const m = { exports: {} };',
    ' require("vm").runInThisContext(require("fs").readFileSync(p, "utf8"), { filename: p })(m.exports, require("module").createRequire(p), m, p, require("path").dirname(p));',
    ` m.exports.${fn}();`,
    `} else import(process.argv[1]).then((m) => m.${fn}());`,
  ].join(' ');
}
