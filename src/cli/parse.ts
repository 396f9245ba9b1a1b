/**
 * CRIU's command line, parsed like getopt_long does it: short clusters
 * ("-Rj", "-t123", "-vvv"), "--opt=value" and "--opt value", unambiguous
 * prefixes of long names, options before or after the command, "--" ends
 * options. Configuration files contribute words first (lower priority).
 * parseArgs is pure apart from reading configuration files, which callers
 * can replace through `sources`.
 */
import { isAbsolute, resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import { CGROUP_MODES, parseCgroupRoot } from '../api/cgroup-options.js';
import { parseAutoExternalMount, parseExternalMount } from '../api/mount-options.js';
import { parseCpuCap } from '../api/cpu-cap.js';
import type { CgroupMode } from '../api/options.js';
import { configWords } from './config-file.js';
import { parseJoinNsArg } from '../api/join-ns-arg.js';
import type { ConfigSources } from './config-file.js';
import { LONG_NAMES, SHORT_OPTIONS, isCommandName } from './option-table.js';
import type { CommandName, LongName, OptionSpec } from './option-table.js';
import { PID_MAX_LIMIT } from '../sys/process.js';
import { badArg, intArg, nonEmpty, sizeArg, usage, verbosity, verifyMode } from './arg-values.js';
import { defaults, type CliOptions } from './cli-options.js';

export { sizeArg } from './arg-values.js';

export { DEFAULT_LOG_LEVEL, type CliOptions, type FinalState } from './cli-options.js';

export type ParsedCommand =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'swrk'; fd: number }
  | { kind: 'command'; command: CommandName; action?: string; options: CliOptions };

export interface ParseContext extends ConfigSources {
  /** directory relative paths are resolved against (default process.cwd()) */
  cwd?: string;
}

interface Raw {
  cwd: string;
  execCmd: boolean;
  imagesDir?: string;
  workDir?: string;
  logFile?: string;
  pidfile?: string;
  opts: CliOptions;
}

/** One option occurrence, the way the user wrote it (for messages). */
interface Hit {
  spec: OptionSpec;
  negated: boolean;
  shown: string;
  value: string | undefined;
}

export function parseArgs(argv: readonly string[], ctx: ParseContext = {}): ParsedCommand {
  // CRIU looks for -h/--help before anything else, so a broken config file cannot hide the help.
  for (const a of argv) {
    if (a === '--') break;
    if (a === '-h' || a === '--help') return { kind: 'help' };
  }
  if (argv[0] === 'swrk') {
    const fd = argv[1];
    if (fd === undefined || !/^\d+$/.test(fd)) throw usage('swrk needs a file descriptor: criu-ts swrk FD');
    return { kind: 'swrk', fd: Number(fd) };
  }
  const raw: Raw = { cwd: ctx.cwd ?? process.cwd(), execCmd: false, opts: defaults() };
  const positional: string[] = [];
  const sources = [configWords(argv, ctx), [...argv]];
  for (const words of sources) {
    const result = scan(words, raw, positional);
    if (result === 'version') return { kind: 'version' };
  }
  return finish(raw, positional);
}

function scan(words: readonly string[], raw: Raw, positional: string[]): 'version' | undefined {
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? '';
    if (w === '--') {
      positional.push(...words.slice(i + 1));
      break;
    }
    if (w.startsWith('--')) {
      const eq = w.indexOf('=');
      const name = eq < 0 ? w.slice(2) : w.slice(2, eq);
      const long = lookupLong(name);
      let value: string | undefined = eq < 0 ? undefined : w.slice(eq + 1);
      const shown = `--${long.name}`;
      if (long.spec.arg === 'none' && value !== undefined) throw usage(`option ${shown} doesn't allow an argument`, { option: long.name });
      if (long.spec.arg === 'required' && value === undefined) {
        value = words[i + 1];
        if (value === undefined) throw usage(`option ${shown} requires an argument`, { option: long.name });
        i++;
      }
      if (apply({ spec: long.spec, negated: long.negated, shown, value }, raw) === 'version') return 'version';
    } else if (w.startsWith('-') && w.length > 1) {
      for (let j = 1; j < w.length; j++) {
        const c = w[j] ?? '';
        const spec = SHORT_OPTIONS.get(c);
        if (spec === undefined) throw usage(`unknown option -${c}`, { option: c });
        let value: string | undefined;
        if (spec.arg !== 'none') {
          const rest = w.slice(j + 1);
          if (rest !== '') value = rest;
          else if (spec.arg === 'required') {
            value = words[i + 1];
            if (value === undefined) throw usage(`option -${c} requires an argument`, { option: c });
            i++;
          }
          j = w.length;
        }
        if (apply({ spec, negated: false, shown: `-${c}`, value }, raw) === 'version') return 'version';
      }
    } else {
      positional.push(w);
    }
  }
  return undefined;
}

function lookupLong(name: string): LongName {
  const exact = LONG_NAMES.find((l) => l.name === name);
  if (exact !== undefined) return exact;
  // getopt_long accepts any unambiguous prefix of a long option.
  const matches = name === '' ? [] : LONG_NAMES.filter((l) => l.name.startsWith(name));
  const first = matches[0];
  if (first === undefined) throw usage(`unknown option --${name}`, { option: name });
  if (matches.length > 1) {
    throw usage(`option --${name} is ambiguous (${matches.map((m) => `--${m.name}`).join(', ')})`, { option: name });
  }
  return first;
}

function apply(hit: Hit, raw: Raw): 'version' | undefined {
  const { spec, negated, shown, value } = hit;
  const o = raw.opts;
  const on = !negated;
  if (spec.support === 'unsupported') {
    // The "--no-" form of an unsupported switch asks for what we do anyway.
    if (negated) return undefined;
    if (spec.long === 'ms') throw usage('--ms is deprecated; see "Check options" of criu-ts --help');
    if (spec.long === 'tls') throw new CriuTsError('EUNSUPPORTED', '--tls is not supported yet: the page server and its clients speak plain TCP (tunnel it, e.g. over ssh, across untrusted networks)', { option: spec.long });
    throw new CriuTsError('EUNSUPPORTED', `--${spec.long} is not supported yet`, { option: spec.long });
  }
  if (spec.support === 'ignore') {
    if (spec.long === 'file-validation' && value !== 'filesize' && value !== 'buildid') throw badArg(shown, value);
    if (on) o.ignored.push(shown);
    return undefined;
  }
  switch (spec.long) {
    case 'version': return 'version';
    case 'tree': o.tree = intArg(shown, value, 1, PID_MAX_LIMIT); break;
    case 'leave-stopped': o.finalState = 'stopped'; break;
    case 'leave-running': o.finalState = 'running'; break;
    case 'restore-detached': case 'daemon': o.restoreDetached = on; break;
    case 'restore-sibling': o.restoreSibling = on; break;
    case 'skip-checksums': o.skipChecksums = on; break;
    case 'verify': o.verify = verifyMode(shown, value); break;
    case 'images-dir': raw.imagesDir = nonEmpty(shown, value); break;
    case 'work-dir': raw.workDir = nonEmpty(shown, value); break;
    case 'log-file': raw.logFile = nonEmpty(shown, value); break;
    case 'pidfile': raw.pidfile = nonEmpty(shown, value); break;
    case 'verbosity': o.logLevel = verbosity(value, o.logLevel); break;
    case 'config': case 'no-default-config': break; // handled by configWords
    case 'close': o.closeFds.push(intArg(shown, value, 0)); break;
    case 'action-script': o.actionScripts.push(nonEmpty(shown, value)); break;
    case 'exec-cmd': raw.execCmd = true; break;
    case 'display-stats': o.displayStats = on; break;
    case 'timeout': o.timeoutSec = intArg(shown, value, 0); break;
    case 'freeze-cgroup': o.freezeCgroup = nonEmpty(shown, value); break;
    case 'manage-cgroups': {
      const mode = value ?? 'soft';
      if (!(CGROUP_MODES as readonly string[]).includes(mode)) throw badArg(shown, value ?? '');
      o.manageCgroups = mode as CgroupMode;
      break;
    }
    case 'inherit-fd': o.inheritFd.push(parseInheritFd(shown, nonEmpty(shown, value))); break;
    case 'cgroup-root': parseCgroupRoot(nonEmpty(shown, value)); o.cgroupRoot.push(nonEmpty(shown, value)); break;
    case 'root': o.root = nonEmpty(shown, value); break;
    case 'ext-mount-map': {
      const v = nonEmpty(shown, value);
      const colon = v.indexOf(':');
      if (v === 'auto') {
        o.autoExtMounts = true;
        break;
      }
      if (colon <= 0 || colon === v.length - 1) throw badArg(shown, v);
      o.extMounts.push({ key: v.slice(0, colon), value: v.slice(colon + 1) });
      break;
    }
    case 'cgroup-yard': o.cgroupYard = nonEmpty(shown, value); break;
    case 'cgroup-dump-controller': o.cgroupDumpController.push(nonEmpty(shown, value)); break;
    case 'join-ns': o.joinNs.push(parseJoinNsArg(nonEmpty(shown, value))); break;
    case 'external': {
      // Mounts are the mount kind's (api/mount-options.ts); the others are read by api/externals.ts.
      const v = nonEmpty(shown, value);
      const auto = parseAutoExternalMount(v);
      const em = auto === undefined ? parseExternalMount(v) : undefined;
      if (auto !== undefined) {
        o.autoExtMounts = true;
        if (auto.sharing) o.extSharing = true;
        if (auto.masters) o.extMasters = true;
      } else if (em !== undefined) o.extMounts.push(em);
      else o.external.push(v);
      break;
    }
    case 'enable-external-sharing': o.extSharing = true; break;
    case 'enable-external-masters': o.extMasters = true; break;
    case 'veth-pair': {
      // CRIU's form: IN=OUT[@BRIDGE], the same as --external veth[IN]:OUT[@BRIDGE].
      const v = nonEmpty(shown, value);
      const eq = v.indexOf('=');
      if (eq <= 0 || eq === v.length - 1) throw badArg(shown, v);
      const out = v.slice(eq + 1);
      const at = out.indexOf('@');
      o.vethPairs.push(at < 0 ? { inside: v.slice(0, eq), outside: out } : { inside: v.slice(0, eq), outside: out.slice(0, at), bridge: out.slice(at + 1) });
      break;
    }
    case 'empty-ns':
      // CRIU's only one: the runtime makes the net namespace's contents itself.
      if (value !== 'net') throw usage(`unsupported empty namespace: ${value ?? ''} (only net)`, { option: shown, value });
      o.emptyNetNs = true;
      break;
    case 'shell-job': o.shellJob = on; break;
    case 'ext-unix-sk':
      // CRIU's old "--ext-unix-sk=ino,ino" form named sockets; we allow all of them.
      if (value !== undefined) o.ignored.push(`${shown}=${value}`);
      o.extUnixSk = true;
      break;
    case 'tcp-established': o.tcpEstablished = on; break;
    case 'tcp-close': o.tcpClose = on; break;
    case 'skip-in-flight': o.skipInFlight = on; break;
    case 'network-lock':
      if (value !== 'nftables' && value !== 'iptables' && value !== 'skip') throw badArg(shown, value);
      o.networkLock = value;
      break;
    case 'file-locks': o.fileLocks = on; break;
    case 'link-remap': o.linkRemap = on; break;
    case 'ghost-limit': o.ghostLimitBytes = sizeArg(shown, value); break;
    case 'cpu-cap': o.cpuCap = parseCpuCap(value); break;
    case 'track-mem': o.trackMem = on; break;
    case 'auto-dedup': o.autoDedup = on; break;
    case 'prev-images-dir': o.prevImagesDir = nonEmpty(shown, value); break;
    case 'pre-dump-mode':
      if (value !== 'splice' && value !== 'read') throw badArg(shown, value);
      o.preDumpMode = value;
      break;
    case 'feature': o.feature = nonEmpty(shown, value); break;
    case 'address': o.address = nonEmpty(shown, value); break;
    case 'port': o.port = intArg(shown, value, 0, 65535); break;
    case 'status-fd': o.statusFd = intArg(shown, value, 0); break;
    case 'page-server': o.pageServer = on; break;
    case 'lazy-pages': o.lazyPages = on; break;
    case 'socket-mode':
      if (value === undefined || !/^0?[0-7]{3}$/.test(value)) throw badArg(shown, value);
      o.socketMode = parseInt(value, 8);
      break;
    case 'socket-group': o.socketGroup = nonEmpty(shown, value); break;
    case 'extra': o.checkExtra = on; break;
    case 'experimental': o.checkExperimental = on; break;
    case 'all': o.checkExtra = true; o.checkExperimental = true; break;
    default: throw new CriuTsError('EINTERNAL', `option --${spec.long} has no handler`);
  }
  return undefined;
}

function inDir(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

function finish(raw: Raw, positional: readonly string[]): ParsedCommand {
  const o = raw.opts;
  // CRIU answers "--feature list" as soon as it parses it, with or without a command.
  const cmd = positional[0] ?? (o.feature === 'list' ? 'check' : undefined);
  if (cmd === undefined) throw usage('command is required (dump, restore, check, ...; see --help)');
  if (!isCommandName(cmd)) throw usage(`unknown command: ${cmd}`, { command: cmd });
  const extra = positional.slice(1);
  let action: string | undefined;
  if (raw.execCmd) {
    // CRIU's checks, in its order: the words after the command are what gets run.
    if (extra.length === 0) throw usage('--exec-cmd requires a command');
    if (cmd !== 'restore') throw usage('--exec-cmd is available for the restore command only');
    if (o.restoreDetached) throw usage('--restore-detached and --exec-cmd cannot be used together');
    o.execCmd = extra;
  } else if (cmd === 'cpuinfo') {
    action = extra[0];
    if (action !== 'dump' && action !== 'check') throw usage('cpuinfo requires an action: dump or check');
    if (extra.length > 1) throw usage(`excessive parameters for command ${cmd}`);
  } else if (extra.length > 0) {
    throw usage(`excessive parameter${extra.length > 1 ? 's' : ''} for command ${cmd}: ${extra.join(' ')}`);
  }
  if (o.restoreSibling && !o.restoreDetached) throw usage('--restore-sibling only makes sense with --restore-detached');
  if ((cmd === 'dump' || cmd === 'pre-dump') && o.tree === undefined) throw usage('pid not specified (use -t PID)');
  o.imagesDir = inDir(raw.cwd, raw.imagesDir ?? '.');
  o.workDir = raw.workDir === undefined ? o.imagesDir : inDir(raw.cwd, raw.workDir);
  if (raw.logFile !== undefined) o.logFile = raw.logFile === '-' ? '-' : inDir(o.workDir, raw.logFile);
  if (raw.pidfile !== undefined) o.pidfile = inDir(o.workDir, raw.pidfile);
  return action === undefined ? { kind: 'command', command: cmd, options: o } : { kind: 'command', command: cmd, action, options: o };
}

/** CRIU's --inherit-fd form: fd[N]:KEY, N one of our open fds, KEY as CRIU names the file (pipe:[ino], socket:[ino], path). */
function parseInheritFd(shown: string, value: string): { fd: number; key: string } {
  const m = /^fd\[(\d+)\]:(.+)$/.exec(value);
  if (!m) throw new CriuTsError('EUSAGE', `${shown} ${value}: expected fd[N]:KEY`, { option: shown, value });
  return { fd: Number(m[1]), key: m[2] as string };
}
