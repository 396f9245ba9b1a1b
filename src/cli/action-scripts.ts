/**
 * CRIU's --action-script: each script is run with "sh -c SCRIPT" at every
 * action point of a dump or restore (the `notify` option of the API calls
 * us there). The environment is CRIU's: CRTOOLS_SCRIPT_ACTION names the
 * point, CRTOOLS_IMAGE_DIR the images directory and, once the tree's root
 * is known (not at pre-dump or pre-restore, as in CRIU), CRTOOLS_INIT_PID
 * its pid. The scripts' output goes to the log file when there is one, like
 * CRIU's. A script that exits non-zero fails the operation at that point.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { CriuTsError } from '../errors.js';
import { readImage } from '../images/io.js';
import { logger } from '../log.js';

const log = logger('action-script');

/** The points at which the tree's root pid is not known yet (CRIU sets CRTOOLS_INIT_PID later). */
const BEFORE_ROOT = new Set(['pre-dump', 'pre-restore']);

export interface ActionScriptContext {
  scripts: readonly string[];
  imagesDir: string;
  /** the tree's root: -t on dump, the first pstree entry on restore */
  rootPid: () => number | undefined;
  /** where the scripts' stdout and stderr go (undefined: our stderr) */
  logFile?: string;
  /** the work dir: CRIU has moved there before any script runs */
  cwd: string;
}

export function actionScriptNotifier(ctx: ActionScriptContext): (action: string) => Promise<void> {
  let rootKnown = false;
  return async (action: string): Promise<void> => {
    if (!BEFORE_ROOT.has(action)) rootKnown = true;
    const env: NodeJS.ProcessEnv = { ...process.env, CRTOOLS_SCRIPT_ACTION: action, CRTOOLS_IMAGE_DIR: ctx.imagesDir };
    const root = rootKnown ? ctx.rootPid() : undefined;
    if (root !== undefined) env['CRTOOLS_INIT_PID'] = String(root);
    for (const script of ctx.scripts) {
      log.debug(`running ${script} for ${action}`);
      const status = await runScript(script, env, ctx.cwd, ctx.logFile);
      if (status !== 0) {
        throw new CriuTsError('EUSAGE', `Script ${script} exited with ${status} (action ${action})`, { script, action, status });
      }
    }
  };
}

function runScript(script: string, env: NodeJS.ProcessEnv, cwd: string, logFile: string | undefined): Promise<number> {
  let out: number | 'inherit' = 'inherit';
  if (logFile !== undefined) {
    try {
      out = openSync(logFile, 'a');
    } catch {
      // the log file is CRIU's choice of output, not a condition for running the script
    }
  }
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', script], { cwd, env, stdio: ['ignore', out, out] });
    const done = (status: number): void => {
      if (typeof out === 'number') closeSync(out);
      resolve(status);
    };
    child.on('error', () => done(127));
    // Like a shell: 128+N for a script killed by signal N.
    child.on('exit', (code, signal) => done(code ?? (signal === null ? 1 : 128 + signalNumber(signal))));
  });
}

function signalNumber(name: NodeJS.Signals): number {
  return constants.signals[name];
}

/** The root pid of a dump, from pstree.img (its first entry), or undefined if it cannot be read. */
export function rootPidOfImages(imagesDir: string): number | undefined {
  try {
    const img = readImage(join(imagesDir, 'pstree.img'));
    const first = img.entries[0] as { pid?: unknown } | undefined;
    return typeof first?.pid === 'number' ? first.pid : undefined;
  } catch {
    return undefined;
  }
}
