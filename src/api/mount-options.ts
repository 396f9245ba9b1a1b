/**
 * The mount options (--root, --external mnt[K]:V, -M K:V, --external
 * mnt[] and -M auto, --enable-external-sharing/-masters) of dump and
 * restore, resolved once for the kinds (kinds/ns/mnt): a relative --root
 * is taken in the current directory, as CRIU does; a key given twice is an
 * error rather than a silent choice.
 */
import { resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import type { MountOptions } from '../kinds/index.js';

export function mountOptions(o: { root?: string; extMounts?: readonly { key: string; value: string }[]; autoExtMounts?: boolean; extSharing?: boolean; extMasters?: boolean }): MountOptions {
  const extMounts = new Map<string, string>();
  for (const { key, value } of o.extMounts ?? []) {
    if (key === '' || value === '') throw new CriuTsError('EUSAGE', `external mount "${key}:${value}": both the key and the value are needed`, { key, value });
    if (extMounts.has(key) && extMounts.get(key) !== value) throw new CriuTsError('EUSAGE', `external mount ${key} is given twice (${extMounts.get(key) ?? ''}, ${value})`, { key });
    extMounts.set(key, value);
  }
  return {
    root: o.root === undefined || o.root === '' ? undefined : resolve(o.root),
    extMounts,
    autoExtMounts: o.autoExtMounts ?? false,
    extSharing: o.extSharing ?? false,
    extMasters: o.extMasters ?? false,
  };
}

/**
 * CRIU's "--external mnt[]" and "mnt[]:FLAGS" (automatic detection of
 * external mounts; FLAGS holds `s` to allow mounts shared with criu-ts's
 * namespace, `m` slaves of it), or undefined for another form.
 */
export function parseAutoExternalMount(arg: string): { sharing: boolean; masters: boolean } | undefined {
  const m = /^mnt\[\](?::(.*))?$/s.exec(arg);
  if (m === null) return undefined;
  const flags = m[1] ?? '';
  if (!/^[ms]*$/.test(flags)) throw new CriuTsError('EUSAGE', `--external ${arg}: the flags after mnt[]: are m (external masters) and s (external sharing)`, { arg });
  return { sharing: flags.includes('s'), masters: flags.includes('m') };
}

/**
 * CRIU's "--external mnt[KEY]:VALUE", or undefined for another kind of
 * external resource (or for mnt[], read by parseAutoExternalMount).
 */
export function parseExternalMount(arg: string): { key: string; value: string } | undefined {
  const m = /^mnt\[([^\]]*)\](?::(.*))?$/s.exec(arg);
  if (m === null) return undefined;
  const key = m[1] ?? '';
  const value = m[2] ?? '';
  if (key === '') return undefined; // mnt[]: parseAutoExternalMount
  if (value === '') throw new CriuTsError('EUSAGE', `--external ${arg}: the form is mnt[KEY]:VALUE`, { arg });
  return { key, value };
}
