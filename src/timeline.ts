/**
 * A timeline of one restore for the performance work (docs/performance.md,
 * bench/lazy-timeline.ts): named moments on the monotonic clock, each with
 * the number of calls injected into tasks so far (each a round trip to
 * the task through ptrace). Off
 * unless a caller turns it on (the bench through timelineOn(), the CLI
 * with CRIU_TS_TIMELINE=FILE, written as JSON lines when the process
 * exits): a mark then costs one test of a variable.
 */
import { appendFileSync } from 'node:fs';

export interface Mark {
  what: string;
  /** performance.now(): ms since this process's start (performance.timeOrigin) */
  ms: number;
  /** calls injected into tasks before this moment */
  calls: number;
  /** this process's CPU time (user + system, every thread) so far, ms */
  cpu: number;
}

let marks: Mark[] | undefined;
let calls = 0;

/** Start recording (again): what was recorded before is dropped. */
export function timelineOn(): void {
  marks = [];
  calls = 0;
}

/** Stop recording; returns what was recorded. */
export function timelineOff(): Mark[] {
  const out = marks ?? [];
  marks = undefined;
  return out;
}

export function mark(what: string): void {
  if (marks === undefined) return;
  const u = process.cpuUsage();
  marks.push({ what, ms: performance.now(), calls, cpu: (u.user + u.system) / 1000 });
}

/** One call injected into a task (infect/held-task.ts). */
export function countInjected(): void {
  if (marks) calls++;
}

/**
 * CRIU_TS_TIMELINE=FILE (the CLI): record from the start and append the
 * marks to FILE when the process exits, with its start on the wall clock
 * (performance.timeOrigin, ms since the epoch) so that another process's
 * clock can be set beside them.
 */
export function timelineFromEnv(): void {
  const file = process.env['CRIU_TS_TIMELINE'];
  if (file === undefined || file === '') return;
  timelineOn();
  mark('main');
  process.on('exit', () => {
    appendFileSync(file, JSON.stringify({ pid: process.pid, origin: performance.timeOrigin, marks: timelineOff() }) + '\n');
  });
}
