/**
 * The mount options (--root, --external mnt[K]:V, -M K:V) of dump and
 * restore, resolved once for the kinds (kinds/ns/mnt): a relative --root
 * is taken in the current directory, as CRIU does; a key given twice is an
 * error rather than a silent choice.
 */
import { resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import type { MountOptions } from '../kinds/index.js';

export function mountOptions(o: { root?: string; extMounts?: readonly { key: string; value: string }[] }): MountOptions {
  const extMounts = new Map<string, string>();
  for (const { key, value } of o.extMounts ?? []) {
    if (key === '' || value === '') throw new CriuTsError('EUSAGE', `external mount "${key}:${value}": both the key and the value are needed`, { key, value });
    if (extMounts.has(key) && extMounts.get(key) !== value) throw new CriuTsError('EUSAGE', `external mount ${key} is given twice (${extMounts.get(key) ?? ''}, ${value})`, { key });
    extMounts.set(key, value);
  }
  return { root: o.root === undefined || o.root === '' ? undefined : resolve(o.root), extMounts };
}

/**
 * CRIU's "--external mnt[KEY]:VALUE" (the one form of --external criu-ts
 * takes yet), or undefined for another kind of external resource.
 */
export function parseExternalMount(arg: string): { key: string; value: string } | undefined {
  const m = /^mnt\[([^\]]*)\](?::(.*))?$/s.exec(arg);
  if (m === null) return undefined;
  const key = m[1] ?? '';
  const value = m[2] ?? '';
  if (key === '') throw new CriuTsError('EUNSUPPORTED', `--external mnt[]${value === '' ? '' : `:${value}`} (external mounts found automatically) is not supported yet: name each mount`, { arg });
  if (value === '') throw new CriuTsError('EUSAGE', `--external ${arg}: the form is mnt[KEY]:VALUE`, { arg });
  return { key, value };
}
