/**
 * /proc is read in src/proc (its parsers: one read per file, typed
 * results, EPROC on odd content and ENOTASK when the task is gone) and in
 * src/sys; elsewhere a module calls them. This reads every file of src/ and
 * fails on a readFileSync, openSync, readdirSync or readlinkSync of a path
 * spelled "/proc/..." outside those two folders, but for the files listed
 * below, each with why it opens /proc itself. It sees paths spelled at the
 * call, and names given a /proc path then read (or built on); a path put
 * together further away is for review to catch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { SRC, tsFiles } from './src-files.js';

/** file of src/ -> why it reads /proc itself */
const OPENS_PROC: Readonly<Record<string, string>> = {
  'infect/helper-task.ts':
    "the exe link of its own helper, compared as UTF-8 text with the program's path to see it has exec'd (proc's readExe gives latin1)",
  'kinds/cgroup/restore.ts':
    "criu-ts's own /proc/self/cgroup, its paths kept as UTF-8 text as the dump's are (proc's readCgroup gives latin1)",
  'kinds/files/fsnotify-handle.ts':
    'opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse)',
  'kinds/files/memfd.ts':
    'opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse), and the map_files and fd lists of a task that holds one',
  'kinds/files/pipe-data.ts':
    'opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse)',
  'kinds/files/pipe.ts':
    'opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse)',
  'kinds/files/reg-file.ts':
    "opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse) (a path in a task's root)",
  'kinds/files/tty/tty.ts':
    "the fds of the tasks it holds and their links, a ptmx path among them used as UTF-8 text to find its devpts (proc's readFdLink gives latin1)",
  'kinds/files/unix-socket/dump.ts':
    "a unix socket's name relative to the task's cwd, read as UTF-8 text for the image (proc's readCwd gives latin1)",
  'kinds/memory/guard.ts':
    'opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse) (pagemap read with PAGEMAP_SCAN, an ioctl)',
  'kinds/memory/incremental.ts':
    'opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse) (pagemap kept open between pre-dumps for PAGEMAP_SCAN)',
  'kinds/memory/shmem-restore.ts':
    'opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse), and the map_files/fd lists where a restored task holds the object',
  'kinds/ns/mnt/index.ts':
    'opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse) (setns)',
  'kinds/ns/net.ts':
    'opens a file, mapping or namespace through its /proc magic link to hold it (a handle to use, not a file to parse) (setns, a namespace kept open between steps)',
  'rpc/opts.ts':
    "the path of a directory fd the RPC caller passed (/proc/PID/fd/N, a magic link), as UTF-8 text, checked by inode against the fd itself",
  'restore/stub.ts':
    "the exe link of its own stub, compared as UTF-8 text with the program's path to see it has exec'd (proc's readExe gives latin1)",
  'restore/verify/files.ts':
    "--verify compares a restored task's cwd and root links, as UTF-8 text, with the images' paths (proc's readCwd/readRoot give latin1)",
};

const READ = /\b(readFileSync|openSync|readdirSync|readlinkSync)\(\s*(['"`])\/proc\//g;
/** A name given a /proc path (`const file = `/proc/${pid}/cgroup``): a read of it, or of a path built on it, counts too. */
const NAMED = /\b(?:const|let)\s+(\w+)\s*=\s*['"`]\/proc\//g;

/** Every read of a /proc path in `text`: [the call, its offset]. */
function procReads(text: string): [string, number][] {
  const out: [string, number][] = [...text.matchAll(READ)].map((m) => [m[1] as string, m.index]);
  for (const n of text.matchAll(NAMED)) {
    const name = n[1] as string;
    const use = new RegExp(`\\b(readFileSync|openSync|readdirSync|readlinkSync)\\(\\s*(?:${name}\\b|\`\\$\\{${name}\\})`, 'g');
    for (const m of text.matchAll(use)) out.push([m[1] as string, m.index]);
  }
  return out.sort((a, b) => a[1] - b[1]);
}

test('/proc is read only in src/proc and src/sys (and the files that say why)', () => {
  const found: string[] = [];
  for (const file of tsFiles()) {
    const rel = relative(SRC, file);
    if (rel.startsWith('proc/') || rel.startsWith('sys/') || OPENS_PROC[rel] !== undefined) continue;
    const text = readFileSync(file, 'utf8');
    for (const [call, at] of procReads(text)) {
      const line = text.slice(0, at).split('\n').length;
      found.push(`src/${rel}:${line}: ${call} of a /proc path`);
    }
  }
  assert.deepEqual(found, []);
});

test('every file listed as reading /proc itself still does', () => {
  const stale = Object.keys(OPENS_PROC).filter((rel) => procReads(readFileSync(`${SRC}/${rel}`, 'utf8')).length === 0);
  assert.deepEqual(stale, []);
});
