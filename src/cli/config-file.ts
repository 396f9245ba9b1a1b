/**
 * CRIU's configuration file syntax: one option per line, written without the
 * leading dashes ("tcp-established", "images-dir /srv/ckpt", "verbosity=4").
 * The first word of a line becomes "--word"; later words are its arguments.
 * '#' starts a comment; a double-quoted word may hold spaces (\" escapes a quote).
 * Default files are /etc/criu/default.conf and ~/.criu/default.conf, then
 * $CRIU_CONFIG_FILE, then --config FILE; --config or --no-default-config
 * switches the two default files off.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CriuTsError } from '../errors.js';

export const GLOBAL_CONFIG_PATH = '/etc/criu/default.conf';
export const USER_CONFIG_NAME = '.criu/default.conf';

/** Split one config file's text into argv-style words. */
export function parseConfigText(text: string, source = 'config'): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, index) => {
    const words = splitLine(line, `${source}:${index + 1}`);
    words.forEach((w, i) => out.push(i === 0 ? `--${w}` : w));
  });
  return out;
}

function splitLine(line: string, where: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i] ?? '')) i++;
    if (i >= line.length || line[i] === '#') break;
    if (line[i] === '"') {
      let word = '';
      i++;
      let closed = false;
      while (i < line.length) {
        const c = line[i];
        if (c === '\\' && line[i + 1] === '"') {
          word += '"';
          i += 2;
        } else if (c === '"') {
          closed = true;
          i++;
          break;
        } else {
          word += c;
          i++;
        }
      }
      if (!closed) throw new CriuTsError('EUSAGE', `${where}: unterminated quoted string`, { where });
      words.push(word);
    } else {
      let word = '';
      while (i < line.length && !/\s/.test(line[i] ?? '')) word += line[i++];
      words.push(word);
    }
  }
  return words;
}

/** Where the configuration comes from; injectable so parsing stays testable. */
export interface ConfigSources {
  /** $HOME, for ~/.criu/default.conf (undefined: skip it) */
  home?: string | undefined;
  /** $CRIU_CONFIG_FILE */
  envConfigFile?: string | undefined;
  /** read a file; return undefined when it does not exist */
  readFile?: (path: string) => string | undefined;
  /** false: never read the two default files (tests) */
  useDefaultFiles?: boolean;
}

export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new CriuTsError('EUSAGE', `cannot read config file ${path}: ${(e as Error).message}`, { path }, e);
  }
}

/**
 * The argv words every configuration file contributes, lowest priority first.
 * A --config file that does not exist is an error (the user named it);
 * missing default files are not.
 */
export function configWords(argv: readonly string[], src: ConfigSources): string[] {
  const read = src.readFile ?? readIfExists;
  let noDefault = src.useDefaultFiles === false;
  let cfgFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') break;
    if (a === '--no-default-config') noDefault = true;
    else if (a === '--config') {
      const next = argv[i + 1];
      if (next === undefined) throw new CriuTsError('EUSAGE', 'option --config requires an argument', { option: 'config' });
      cfgFile = next;
      noDefault = true;
    } else if (a.startsWith('--config=')) {
      cfgFile = a.slice('--config='.length);
      noDefault = true;
    }
  }
  const words: string[] = [];
  const add = (path: string, required: boolean): void => {
    const text = read(path);
    if (text === undefined) {
      if (required) throw new CriuTsError('EUSAGE', `cannot read config file ${path}: no such file`, { path });
      return;
    }
    words.push(...parseConfigText(text, path));
  };
  if (!noDefault) {
    add(GLOBAL_CONFIG_PATH, false);
    if (src.home !== undefined) add(join(src.home, USER_CONFIG_NAME), false);
  }
  if (src.envConfigFile !== undefined && src.envConfigFile !== '') add(src.envConfigFile, true);
  if (cfgFile !== undefined) add(cfgFile, true);
  return words;
}
