/**
 * The dump context: the one object the dump core hands every kind. It owns
 * what lives for the length of one dump and belongs to no single task:
 * the global files table, the images kinds fill an entry at a time
 * (pipes-data, sk-queues, tty-info, ...), per-dump memo state keyed by the
 * kinds' own keys, the pages-N.img numbering, the shared-page count for
 * stats-dump, and the steps to run at the end of the dump and at its exit.
 *
 * Two dumps in one process each have their own context: nothing here is
 * module-global.
 */
import type { PageServerClient } from '../kinds/memory/page-server-client.js';
import { randomUuid } from '../sys/index.js';
import { join } from 'node:path';
import { storeImage, writeFileNoFollow, type EntriesOf, type ImageId, type ProtoImageKey } from '../images/index.js';
import type { FileEntry, InventoryEntry } from '../images/messages.js';
import type { DumpContext, DumpKindOptions, KindImage, KindImageEntries, StateKey } from '../kinds/index.js';
import { CriuTsError } from '../errors.js';


export class DumpSession implements DumpContext {
  /** every file_entry of the dump, in id order (files.img) */
  readonly files: FileEntry[] = [];
  /** pages of shared objects written (shared anonymous memory, memfd) */
  sharedPages = 0;
  private nextFileId = 1;
  private pagesId = 0;
  private readonly queued = new Map<KindImage, { entries: KindImageEntries[KindImage][]; payloads: Buffer[] }>();
  private readonly memos = new Map<StateKey<unknown>, unknown>();
  private readonly endSteps: (() => void)[] = [];
  private readonly exitSteps: ((tasksLive: boolean) => void)[] = [];
  private exited = false;

  readonly runId = randomUuid();

  constructor(readonly dir: string, readonly opts: DumpKindOptions) {}

  addFile(make: (id: number) => FileEntry): number {
    const id = this.nextFileId++;
    this.files.push(make(id));
    return id;
  }

  /** set by the core (dump/files.ts dumps files in flight; no import back from here) */
  dumpInFlight?: (localFd: number, what: string, holderPid: number) => number;

  /** set by the core: dump --page-server */
  pageServer?: PageServerClient;

  /** set by the core (dump/ids.ts numbers the namespaces) */
  nsIdOf?: (type: string, ino: number) => number;

  /** set by the core once the tree is held (dump/pids.ts): pids as the tree sees them */
  pidView?: (pid: number) => number | undefined;

  vpid(pid: number): number | undefined {
    return this.pidView ? this.pidView(pid) : pid;
  }

  fileById(id: number): FileEntry | undefined {
    return this.files.find((f) => f.id === id);
  }

  emit<K extends KindImage>(image: K, entry: KindImageEntries[K], payload: Buffer = Buffer.alloc(0)): void {
    let slot = this.queued.get(image);
    if (!slot) {
      slot = { entries: [], payloads: [] };
      this.queued.set(image, slot);
    }
    slot.entries.push(entry);
    slot.payloads.push(payload);
  }

  saveImage<K extends ProtoImageKey>(key: K, id: ImageId | undefined, entries: EntriesOf<K>, payloads?: readonly (Buffer | undefined)[]): void {
    storeImage(this.dir, key, id, entries, payloads);
  }


  writeRawImage(file: string, data: Buffer): void {
    if (file.includes('/')) throw new CriuTsError('EINTERNAL', `image name ${file} is not a plain file name`, { file });
    writeFileNoFollow(join(this.dir, file), data);
  }

  /** inventory.img fields the kinds own, merged by the core when it writes inventory.img */
  readonly inventoryFields: Partial<InventoryEntry> = {};

  setInventory(fields: Partial<InventoryEntry>): void {
    Object.assign(this.inventoryFields, fields);
  }

  memo<T>(key: StateKey<T>, make: () => T): T {
    if (this.memos.has(key)) return this.memos.get(key) as T;
    const v = make();
    this.memos.set(key, v);
    return v;
  }

  nextPagesId(): number {
    return ++this.pagesId;
  }

  countSharedPages(n: number): void {
    this.sharedPages += n;
  }

  atEnd(step: () => void): void {
    this.endSteps.push(step);
  }

  atExit(step: (tasksLive: boolean) => void): void {
    this.exitSteps.push(step);
  }

  /** Write the images kinds queued, then run their end steps (once every task's own images are written). */
  finishImages(): void {
    for (const [image, slot] of this.queued) this.saveImage(image, undefined, slot.entries as EntriesOf<typeof image>, slot.payloads);
    this.queued.clear();
    for (const step of this.endSteps.splice(0)) step();
  }

  /**
   * Run the exit steps, once: `tasksLive` says whether the dumped tasks run
   * on. Every step runs even if one before it failed (each puts back or
   * closes something of its own); the first failure is thrown at the end.
   */
  exit(tasksLive: boolean): void {
    if (this.exited) return;
    this.exited = true;
    let failed: { e: unknown } | undefined;
    for (const step of this.exitSteps) {
      try {
        step(tasksLive);
      } catch (e) {
        failed ??= { e };
      }
    }
    if (failed) throw failed.e;
  }
}
