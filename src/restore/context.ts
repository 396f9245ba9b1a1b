/**
 * The restore context: the one object the restore core hands every kind.
 * It answers from what restore/images.ts loaded once (files, every task's
 * fd table) and loads the images kinds wrote at dump (pipes-data.img,
 * sk-queues.img, ...) once, on first ask; per-restore state lives under
 * keys the kinds own. Kinds never open an image file themselves.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadImageIfAny, readImageBytes } from '../images/index.js';
import type { FdinfoEntry, FileEntry } from '../images/messages.js';
import type { KindImage, KindImageData, RestoreContext, RestoreKindOptions, StateKey } from '../kinds/index.js';
import { CriuTsError } from '../errors.js';
import { fdOfTask } from '../sys/index.js';
import type { DumpImages } from './images.js';
import { openInFlight, installFd } from './files.js';

export interface RestoreSession {
  ctx: RestoreContext;
  /** how to find a task's pid here from its pid in the images, once tasks exist (for taskFileCopy) */
  knowTasks(pidHere: (vpid: number) => number | undefined): void;
  /** run the steps kinds registered with afterAllFiles (after a failure: only those that asked for it) */
  afterAllFiles(failed?: boolean): void;
  /** run the steps kinds registered with beforeResume */
  beforeResume(): void;
}

export function restoreSession(img: DumpImages, opts: RestoreKindOptions): RestoreSession {
  const files = [...img.files.values()];
  const fdsOf = new Map<number, readonly FdinfoEntry[]>(img.tasks.map((t) => [t.pstree.pid, t.fds]));
  const kindImages = new Map<KindImage, KindImageData<KindImage>>();
  const states = new Map<StateKey<unknown>, unknown>();
  const after: { step: () => void; alsoOnFailure: boolean }[] = [];
  const last: (() => void)[] = [];
  let pidHere: (vpid: number) => number | undefined = () => undefined;

  const ctx: RestoreContext = {
    dir: img.dir,
    opts,
    inventory: img.inventory,
    files,
    fileById: (id: number): FileEntry | undefined => img.files.get(id),
    taskFds: (pid: number) => fdsOf.get(pid),
    kindImage<K extends KindImage>(image: K): KindImageData<K> {
      let d = kindImages.get(image);
      if (!d) {
        const decoded = loadImageIfAny(img.dir, image);
        d = { entries: decoded?.entries ?? [], payloads: (decoded?.extras ?? []).map((b) => b ?? Buffer.alloc(0)) };
        kindImages.set(image, d);
      }
      return d as KindImageData<K>;
    },
    image: (key, id) => loadImageIfAny(img.dir, key, id),
    rawImage(file: string): Buffer | undefined {
      if (file.includes('/')) throw new CriuTsError('EINTERNAL', `image name ${file} is not a plain file name`, { file });
      const path = join(img.dir, file);
      return existsSync(path) ? readImageBytes(path) : undefined;
    },
    state<T>(key: StateKey<T>, make: () => T): T {
      if (states.has(key)) return states.get(key) as T;
      const v = make();
      states.set(key, v);
      return v;
    },
    provide: () => {},
    afterAllFiles: (step, o) => after.push({ step, alsoOnFailure: o?.alsoOnFailure ?? false }),
    beforeResume: (step) => last.push(step),
    openInFlight: (t, id) => openInFlight(t, id, ctx),
    isTaskFile: (id) => img.tasks.some((t) => t.fds.some((f) => f.id === id)),
    taskFileCopy(id: number): number | undefined {
      for (const t of img.tasks) {
        const f = t.fds.find((x) => x.id === id);
        const pid = f === undefined ? undefined : pidHere(t.pstree.pid);
        if (f !== undefined && pid !== undefined) return fdOfTask(pid, f.fd);
      }
      return undefined;
    },
    installFd,
  };
  return {
    ctx,
    knowTasks: (fn) => {
      pidHere = fn;
    },
    afterAllFiles: (failed = false) => {
      // Steps may add steps (a queue sent late opens a file in flight, whose copies are closed by a step of their own).
      while (after.length > 0) for (const a of after.splice(0)) if (!failed || a.alsoOnFailure) a.step();
    },
    beforeResume: () => {
      for (const step of last.splice(0)) step();
    },
  };
}
