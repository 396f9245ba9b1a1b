/**
 * Progress on a terminal: one line rewritten in place (tasks done, pages and
 * bytes written), and nothing at all when stderr is not a TTY.
 */
import { isTerminal } from './sys/process.js';

export interface Progress {
  tasks(done: number, total: number): void;
  bytes(n: number): void;
  done(): void;
}

const QUIET: Progress = { tasks: () => {}, bytes: () => {}, done: () => {} };

function human(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}

export function makeProgress(label: string, enabled: boolean): Progress {
  // Not process.stderr.isTTY: that makes process.stderr, and a run that writes nothing there need not (cli/main.ts).
  if (!enabled || !isTerminal(2)) return QUIET;
  let tasksDone = 0;
  let tasksTotal = 0;
  let bytes = 0;
  let last = 0;
  const draw = (force = false): void => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    process.stderr.write(`\r${label}: ${tasksDone}/${tasksTotal} tasks, ${Math.floor(bytes / 4096)} pages, ${human(bytes)}\x1b[K`);
  };
  return {
    tasks(d, t) { tasksDone = d; tasksTotal = t; draw(); },
    bytes(n) { bytes += n; draw(); },
    done() { draw(true); process.stderr.write('\n'); },
  };
}
