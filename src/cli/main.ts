/**
 * criu-ts entry point (bin/criu-ts calls main). Parses CRIU's command line,
 * sets up logging, runs the command, and turns every failure into one line
 * on stderr and exit status 1: a user's mistake never shows a stack trace;
 * an internal error (anything not caused by the user) shows one only at -v4.
 */
import { closeSync } from 'node:fs';
import { CriuTsError, describeError, exitCodeOf, isUserError } from '../errors.js';
import { logLevel, logger, setLogFile, setLogLevel } from '../log.js';
import { parseArgs } from './parse.js';
import type { CliOptions } from './cli-options.js';
import { HELP } from './usage.js';
import { writeStdout } from './stdout.js';
import { CRIU_COMPAT_VERSION_TEXT, version } from '../version.js';
import { timelineFromEnv } from '../timeline.js';
import { allowHeapTrims } from '../heap.js';

const log = logger('criu-ts');

/*
 * What a run needs beyond parsing its arguments is imported when it is
 * needed: in the bundle, a module reached only through import() is
 * evaluated on its first import, so `--help`, `-V` and a usage error
 * evaluate none of the dump, restore, kinds and images modules, and each
 * command only what it reaches (docs/performance.md, "Start-up, session 13").
 */
type Commands = typeof import('./commands.js');
let commands: Commands | undefined;
async function loadCommands(): Promise<Commands> {
  return (commands ??= await import('./commands.js'));
}

/** The guardian's entry (infect/guardian.ts) starts node on this module, bundled or not. */
export async function guardianMain(): Promise<void> {
  await (await import('../infect/guardian.js')).guardianMain();
}
/** The message-queue keeper's entry (kinds/ns/mqueue-keeper.ts), the same way. */
export async function mqueueKeeperMain(): Promise<void> {
  (await import('../kinds/ns/mqueue-keeper.js')).mqueueKeeperMain();
}

export async function main(argv: string[]): Promise<number> {
  timelineFromEnv();
  // A reader that goes away ("criu-ts check --feature list | head -1") is not an error worth a stack.
  for (const name of ['stdout', 'stderr'] as const) {
    onFirstUse(name, (stream) =>
      stream.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
        throw e;
      }),
    );
  }
  const state: RunState = { logToFile: false, detached: false, execCmd: false };
  const code = await run(argv, state);
  process.exitCode = code;
  // "restore -d" means criu-ts leaves as soon as the tree runs, whatever
  // handles (pidfds, child watchers) the restore left open in this process.
  if (state.detached && (code === 0 || state.execCmd)) process.exit(code);
  // Once nothing is left to run (the moment Node would end by itself), end
  // through process.exit: a natural end then also frees the environment and
  // disposes of V8's heap page by page before the exit that frees it all
  // anyway, 7 ms or more of every run's CPU (docs/performance.md, "Start-up,
  // session 14"). 'beforeExit' comes only when the event loop is empty, so
  // nothing that would still have run is cut short; 'exit' handlers run as before.
  process.once('beforeExit', () => process.exit());
  return code;
}

/**
 * `attach` to process.stdout or stderr when something first uses it:
 * Node makes each on its first use, and making one loads its streams and,
 * for a pipe, node:net (about 10 ms of CPU), which a dump or restore
 * writing its log to a file never needs (docs/performance.md, "Start-up,
 * session 13"). Where Node has made it already, or defines it otherwise,
 * now.
 */
function onFirstUse(name: 'stdout' | 'stderr', attach: (s: NodeJS.WriteStream) => void): void {
  const d = Object.getOwnPropertyDescriptor(process, name);
  const make = d?.get;
  if (make === undefined || d?.configurable !== true) {
    attach(process[name]);
    return;
  }
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: d.enumerable ?? true,
    get(): NodeJS.WriteStream {
      const s = make.call(process) as NodeJS.WriteStream;
      Object.defineProperty(process, name, { configurable: true, enumerable: d.enumerable ?? true, get: () => s });
      attach(s);
      return s;
    },
  });
}

interface RunState {
  logToFile: boolean;
  detached: boolean;
  /** restore --exec-cmd: the command's status is ours, whatever the restore left open */
  execCmd: boolean;
}

async function run(argv: readonly string[], state: RunState): Promise<number> {
  try {
    const parsed = parseArgs(argv, { home: process.env['HOME'], envConfigFile: process.env['CRIU_CONFIG_FILE'] });
    switch (parsed.kind) {
      case 'help':
        writeStdout(HELP);
        return 0;
      case 'version':
        // CRIU prints "Version: X.Y" (and "GitID: ..." for git builds). Scripts
        // compare that number with CRIU releases, so we give the CRIU release
        // whose interfaces we follow (as the RPC VERSION answer does), and
        // say who we are on the GitID line.
        writeStdout(`Version: ${CRIU_COMPAT_VERSION_TEXT}\nGitID: criu-ts-${version()}\n`);
        return 0;
      case 'swrk': {
        const { dropStartupPages } = await import('./trim-pages.js');
        dropStartupPages();
        allowHeapTrims(dropStartupPages);
        // The worker leaves once its client is done, whatever handles a restore left open in this process.
        process.exit(await (await import('../rpc/index.js')).runSwrk(parsed.fd));
      }
      case 'command': {
        const [{ requireImagesDir, runCommand }, { dropStartupPages, smallJob }] = await Promise.all([loadCommands(), import('./trim-pages.js')]);
        // Before the log file, which defaults into it: a missing -D is named as such, as CRIU does.
        if (parsed.command === 'dump' || parsed.command === 'pre-dump' || parsed.command === 'restore') requireImagesDir(parsed.options.imagesDir);
        state.logToFile = setupLogging(parsed.options);
        // With --exec-cmd too: criu's process is the command's by then, nothing of ours waits on.
        state.execCmd = parsed.command === 'restore' && parsed.options.execCmd !== undefined;
        state.detached = (parsed.command === 'restore' && parsed.options.restoreDetached) || state.execCmd;
        // Not for check and cpuinfo: their peak is Node's start, and the drop costs 10-20 ms of CPU
        // (the drop, then the faults of the code that comes back): a tenth of a check.
        // Nor for a small dump or restore (trim-pages.ts smallJob): 11-12 ms of its CPU for 3 MiB.
        if (parsed.command !== 'check' && parsed.command !== 'cpuinfo') {
          if (smallJob(parsed.command, parsed.options)) log.debug('start-up pages kept: a small job');
          else log.debug(`start-up pages dropped: ${dropStartupPages()} KiB`);
          allowHeapTrims(dropStartupPages);
        }
        return await runCommand(parsed.command, parsed.action, parsed.options);
      }
    }
  } catch (e) {
    return report(e, state.logToFile);
  }
}

function setupLogging(o: CliOptions): boolean {
  setLogLevel(o.logLevel);
  for (const fd of o.closeFds) {
    try {
      closeSync(fd);
    } catch {
      // CRIU closes with close(2) and ignores the result
    }
  }
  if (o.logFile !== undefined) {
    try {
      setLogFile(o.logFile === '-' ? '/dev/stdout' : o.logFile);
    } catch (e) {
      throw new CriuTsError('EUSAGE', `cannot open log file ${o.logFile}: ${(e as Error).message}`, { path: o.logFile }, e);
    }
  }
  for (const opt of o.ignored) log.warn(`${opt} is not implemented by criu-ts and is ignored`);
  return o.logFile !== undefined && o.logFile !== '-';
}

/** One line on stderr (and in the log file when there is one); exit status from errors.ts. */
function report(thrown: unknown, logToFile: boolean): number {
  // An ApiFailure comes only from commands.js: when it was never loaded, this is none.
  const fromApi = commands !== undefined && thrown instanceof commands.ApiFailure;
  const e = fromApi ? thrown.error : thrown;
  const line = `${fromApi ? 'Error (criu-ts)' : 'criu-ts'}: ${describeError(e).replace(/\s*\n\s*/g, ' ')}`;
  if (logToFile) log.error(describeError(e));
  process.stderr.write(`${line}\n`);
  if (!isUserError(e) && logLevel() >= 4 && e instanceof Error && e.stack !== undefined) process.stderr.write(`${e.stack}\n`);
  return exitCodeOf(e);
}
