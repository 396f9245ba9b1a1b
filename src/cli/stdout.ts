/**
 * The CLI's output on stdout, written with write(2) rather than through
 * process.stdout: making that stream loads Node's stream modules (about
 * 3 ms of CPU), a sixtieth of a `check` whose whole output is one line
 * (docs/performance.md, "Start-up, session 13"). process.stdout writes
 * synchronously to files, pipes and terminals on Linux, so nothing of its
 * own can be pending ahead of these bytes.
 */
import { writeSync } from 'node:fs';

/** `text` on fd 1, whole. A reader gone away (EPIPE) ends the run as main.ts's handler does. */
export function writeStdout(text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(1, bytes, done);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // "criu-ts check --feature list | head -1": not an error worth a stack.
      if (code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
      // A non-blocking stdout that is full: the stream waits for it.
      if (code === 'EAGAIN') {
        process.stdout.write(bytes.subarray(done));
        return;
      }
      throw e;
    }
  }
}
