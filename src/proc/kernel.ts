/**
 * What the running kernel says of itself in /proc: its build
 * configuration (/proc/config.gz, where it is built with IKCONFIG_PROC)
 * and the filesystem types it knows (/proc/filesystems). `check` asks
 * these where a probe would need more than it can do cheaply.
 */
import { existsSync, readFileSync } from 'node:fs';
import { nodeZlib } from '../builtins.js';
import { lines, readProcText } from './read.js';

/** CONFIG_X -> its value ('y', 'm', a number, a string), from /proc/config.gz; empty where the kernel exposes no config. */
export function readKernelConfig(): Map<string, string> {
  const out = new Map<string, string>();
  const file = '/proc/config.gz';
  if (!existsSync(file)) return out;
  for (const line of nodeZlib().gunzipSync(readFileSync(file)).toString('latin1').split('\n')) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (m !== null) out.set(m[1] as string, m[2] as string);
  }
  return out;
}

/** The filesystem types of /proc/filesystems ("ext4", "autofs", ...), the nodev mark left out. */
export function readFilesystems(): string[] {
  return lines(readProcText(process.pid, '/proc/filesystems')).map((l) => l.split('\t').pop()?.trim() ?? '').filter((n) => n !== '');
}
