/**
 * Node built-in modules that only some runs use, loaded on first use
 * rather than when the bundle is evaluated. A built-in outside Node's
 * start-up snapshot is compiled and run on its first require: node:crypto
 * brings about 25 internal modules (streams, keys, ciphers), about 10 ms
 * of CPU; child_process, net, dgram and zlib about 5 ms more between them;
 * node:v8 its heap utilities. Every CLI run paid for all of them, and a
 * 1 MiB dump uses none (docs/performance.md, "Start-up, session 13").
 * Node caches a built-in after its first require, so each accessor is a
 * map lookup after that.
 */
import { createRequire } from 'node:module';

type ChildProcess = typeof import('node:child_process');
type Crypto = typeof import('node:crypto');
type Net = typeof import('node:net');
type V8 = typeof import('node:v8');
type Zlib = typeof import('node:zlib');

let req: NodeJS.Require | undefined;
function load<T>(name: string): T {
  req ??= createRequire(import.meta.url);
  return req(name) as T;
}

export const childProcess = (): ChildProcess => load<ChildProcess>('node:child_process');
export const nodeCrypto = (): Crypto => load<Crypto>('node:crypto');
export const nodeNet = (): Net => load<Net>('node:net');
export const nodeV8 = (): V8 => load<V8>('node:v8');
export const nodeZlib = (): Zlib => load<Zlib>('node:zlib');
