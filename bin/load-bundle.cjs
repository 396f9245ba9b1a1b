'use strict';
// Runs a command-line bundle (dist/bundle/NAME.cjs, scripts/bundle.mjs) with
// a V8 code cache beside it (NAME.cjs.cache), which Node 20 has no built-in
// for (module.enableCompileCache() came in Node 22): vm.Script with
// cachedData skips parsing and compiling the 1 MB bundle, about a quarter of
// a `criu-ts --help` run's CPU (docs/performance.md). V8 takes a cache only
// from the same V8 with the same flags, so there is one cache per Node
// version and flag set (`node bin/criu-ts` runs without the launcher's
// flags): NAME.cjs.KEY.cache.
//
// The cache holds V8 bytecode: whoever can write it can make the next
// criu-ts run (as root) do anything. It is used only if it is as protected
// as the bundle itself: a regular file (not followed through a link) owned
// by the bundle's owner and writable by nobody else. V8 rejects a cache
// made by another V8 or with other flags, but it recognises its source only
// by length: so the cache names the bundle it was made from (device, inode,
// size, mtime and ctime; ctime changes whenever the file does) and Node's
// version and flags, and is ignored when any of them differ. A missing,
// stale or rejected cache costs nothing but a normal compile; the run then
// writes a fresh one at exit if it runs as the bundle's owner (temp file,
// then rename), and never fails for it.
//
// A cache written at exit also holds the functions that ran compiled (a
// `dump` took 10% less CPU with the dump's functions in the cache than
// with only the module bodies), so there is one cache per command
// (NAME.cjs.KEY.COMMAND.cache, its second line names the command; a run
// without one, `--help`, is "-"), written by its first run: a cache of
// every command's functions was 1.2 MB, which each run read and V8
// deserialised whole, where `--help` needs 0.3 MB and a dump 0.9
// (docs/performance.md, "Start-up, session 13").
//
// Without a bundle, or with one older than the compiled modules (a plain
// `tsc` since), the modules are imported as they are.
const { closeSync, fstatSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync, constants: C } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const vm = require('node:vm');

const MAGIC = 'criu-ts code cache 1';
const MAX_CACHE_BYTES = 64 << 20;

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** FNV-1a, 32 bits: a short file name for a Node version and flag set (not a check: the stamp is). */
function shortKey(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** The line a cache starts with: what it was made from. */
function stamp(st) {
  return `${MAGIC} ${process.version} ${JSON.stringify(process.execArgv)} ${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}\n`;
}

/**
 * The cache file at `path`, opened, if we may trust it for this bundle's owner: its fd and size
 * (the caller reads it: readCache), or undefined.
 */
function openCache(path, bundleStat) {
  let fd;
  try {
    fd = openSync(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_CLOEXEC);
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile() || st.uid !== bundleStat.uid || (st.mode & 0o022n) !== 0n || st.size > MAX_CACHE_BYTES) {
      closeSync(fd);
      return undefined;
    }
    return { fd, size: Number(st.size) };
  } catch {
    if (fd !== undefined) closeSync(fd);
    return undefined;
  }
}

/** Read all of `fd` (from its start) into `buf`, up to its length; the bytes read. */
function readInto(fd, buf) {
  let got = 0;
  for (;;) {
    const n = readSync(fd, buf, got, buf.length - got, got);
    if (n <= 0 || (got += n) === buf.length) return got;
  }
}

/**
 * The opened cache's code (in `buf`, read over whatever was there) and the commands that made it,
 * or undefined when it is not one made for this bundle. Closes the cache's fd.
 */
function readCache(cache, head, buf) {
  try {
    const data = buf.subarray(0, readInto(cache.fd, buf.subarray(0, cache.size)));
    const want = Buffer.from(head);
    if (data.length <= want.length || !data.subarray(0, want.length).equals(want)) return undefined;
    const nl = data.indexOf(10, want.length);
    if (nl < 0) return undefined;
    const made = data.subarray(want.length, nl).toString('latin1').split(' ').filter((w) => w !== '');
    // `buf` is an allocation of its own (aligned): the code is as aligned as its offset.
    return { code: data.subarray(nl + 1), made };
  } catch {
    return undefined;
  } finally {
    closeSync(cache.fd);
  }
}

function writeCache(path, head, made, script) {
  const tmp = `${path}.${process.pid}.tmp`;
  let fd;
  try {
    const data = script.createCachedData();
    fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW | C.O_CLOEXEC, 0o644);
    // The code starts at a multiple of 8 bytes into the file (the made line padded with spaces, which
    // readCache skips): V8 takes cached data only pointer-aligned and copies any other first, a
    // 0.4-1 MB copy and its page faults per run (docs/performance.md, "Start-up, session 14").
    const line = `${head}${made.join(' ')}`;
    writeSync(fd, Buffer.from(`${line}${' '.repeat(7 - (Buffer.byteLength(line) % 8))}\n`));
    writeSync(fd, data);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch {
    // a read-only install, a full disk: the next run compiles again
    if (fd !== undefined) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* never made */ }
  }
}

/**
 * The launchers start node without NODE_EXTRA_CA_CERTS (its certificates
 * cost Node's start about 35 ms of CPU, for TLS criu-ts never makes) and
 * with MALLOC_ARENA_MAX=1 and MALLOC_MMAP_THRESHOLD_ fixed (peak RSS), keeping the caller's values here
 * (src/node-start.ts): back they go, for the programs we start.
 */
function restoreCallerEnv() {
  for (const [name, saved] of [['NODE_EXTRA_CA_CERTS', 'CRIU_TS_CA'], ['MALLOC_ARENA_MAX', 'CRIU_TS_ARENA'], ['MALLOC_MMAP_THRESHOLD_', 'CRIU_TS_MMAP']]) {
    if (!(saved in process.env)) continue;
    const value = process.env[saved];
    delete process.env[saved];
    if (value) process.env[name] = value;
    else delete process.env[name];
  }
}

/**
 * Load bundle `name` (or the modules at `modulesEntry`, relative to the
 * repository) and call its main(argv). `commands`: the words of argv that
 * name a command (a run without one, `--help`, counts as "-"): each has
 * its own cache.
 */
function run(name, modulesEntry, argv, commands) {
  restoreCallerEnv();
  const root = join(__dirname, '..');
  const bundle = join(root, 'dist', 'bundle', `${name}.cjs`);
  const modules = join(root, modulesEntry);
  if (mtime(bundle) < mtime(modules)) {
    import(modules).then((m) => m.main(argv));
    return;
  }
  const fd = openSync(bundle, C.O_RDONLY | C.O_CLOEXEC);
  const st = fstatSync(fd, { bigint: true });
  const command = argv.find((a) => commands.includes(a)) ?? '-';
  const cachePath = `${bundle}.${shortKey(`${process.version} ${JSON.stringify(process.execArgv)}`)}.${command === '-' ? 'help' : command}.cache`;
  const head = stamp(st);
  const opened = openCache(cachePath, st);
  // One buffer for both files: the bundle's text is read into it and copied into a V8 string, then
  // the cache is read over the same pages. Two buffers were two fresh mappings, each of whose pages
  // the kernel's copy touched first (about 150 page faults more per run, dear on a VM:
  // docs/performance.md, "1 MiB through the CLI, session 15"). Not pooled: its own allocation,
  // so the cache's code is as aligned as its offset in the file.
  let buf = Buffer.allocUnsafeSlow(Math.max(Number(st.size), opened?.size ?? 0));
  // latin1: the bundle is ASCII (scripts/bundle.mjs), and latin1 is the cheaper decoding (1-2 ms less).
  const source = buf.toString('latin1', 0, readInto(fd, buf.subarray(0, Number(st.size))));
  closeSync(fd);
  let cache = opened === undefined ? undefined : readCache(opened, head, buf);
  buf = undefined;
  // The bundle is one function expression (scripts/bundle.mjs): the text
  // read is the source V8 keeps, with no second copy made here.
  const script = new vm.Script(source, {
    filename: bundle,
    ...(cache ? { cachedData: cache.code } : {}),
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const stale = cache === undefined || script.cachedDataRejected === true || !cache.made.includes(command);
  cache = undefined; // its bytes are V8's now: let them go with the next scavenge
  if (stale && process.geteuid() === Number(st.uid)) {
    // At exit: the cache then also holds the functions this run compiled.
    // A run that fails may have stopped before its command's code: its cache names no command, is
    // used as it is and made again by the next run, until one succeeds.
    process.once('exit', (code) => writeCache(cachePath, head, code === 0 ? [command] : [], script));
  }
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(bundle), mod, bundle, dirname(bundle));
  mod.exports.main(argv);
}

module.exports = { run };
