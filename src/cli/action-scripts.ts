/**
 * CRIU's --action-script: each script is run with "sh -c SCRIPT" at every
 * action point of a dump or restore (the `notify` option of the API calls
 * us there). The environment is CRIU's: CRTOOLS_SCRIPT_ACTION names the
 * point, CRTOOLS_IMAGE_DIR the images directory and, from the first point
 * after pre-dump or pre-restore on (as CRIU), CRTOOLS_INIT_PID the root pid
 * the core reports. The scripts' output goes to the log file when there is one, like
 * CRIU's. A script that exits non-zero fails the operation at that point.
 */
import { childProcess } from '../builtins.js';
import { constants } from 'node:os';
import { CriuTsError } from '../errors.js';
import type { ActionEvent, ActionNotify } from '../api/options.js';
import { logFileFd, logger } from '../log.js';

const log = logger('action-script');

/** The points at which CRIU does not set CRTOOLS_INIT_PID yet. */
const BEFORE_ROOT: ReadonlySet<string> = new Set(['pre-dump', 'pre-restore']);

export interface ActionScriptContext {
  scripts: readonly string[];
  imagesDir: string;
  /** where the scripts' stdout and stderr go (undefined: our stderr) */
  logFile?: string;
  /** the work dir: CRIU has moved there before any script runs */
  cwd: string;
}

export function actionScriptNotifier(ctx: ActionScriptContext): ActionNotify {
  return async ({ point: action, rootPid }: ActionEvent): Promise<void> => {
    const env: NodeJS.ProcessEnv = { ...process.env, CRTOOLS_SCRIPT_ACTION: action, CRTOOLS_IMAGE_DIR: ctx.imagesDir };
    if (!BEFORE_ROOT.has(action)) env['CRTOOLS_INIT_PID'] = String(rootPid);
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
  // The script writes through the log's own fd: reopening the log by name could follow a link swapped in meanwhile.
  const out: number | 'inherit' = logFile !== undefined ? logFileFd() ?? 'inherit' : 'inherit';
  return new Promise((resolve) => {
    const child = childProcess().spawn('sh', ['-c', script], { cwd, env, stdio: ['ignore', out, out] });
    const done = (status: number): void => {
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
