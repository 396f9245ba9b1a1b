/**
 * notify_scripts: CRIU's action-script points become NOTIFY responses
 * ({type NOTIFY, success true, notify {script, pid}}) that the client must
 * answer with a NOTIFY request; notify_success false aborts the operation
 * like a failing action script (criu/action-scripts.c, cr-service.c).
 *
 * The core may call the `notify` option of dump()/restore() at the exact
 * moments; whatever it has not sent by the end, the RPC layer sends itself
 * in CRIU's order (catchUp), so each point reaches the client exactly once.
 */
import { CriuTsError } from '../errors.js';
import type { ActionEvent, ActionNotify } from '../api/options.js';
import { logger } from '../log.js';
import { closeQuiet } from '../sys/index.js';
import type { RpcConnection } from './transport.js';

const log = logger('rpc');

/** How long a client may take to run what a notification stands for (runc runs OCI hooks here). */
export const NOTIFY_ACK_TIMEOUT_MS = 10 * 60_000;

/** CRIU's order on dump: pre-dump; freeze; network-lock; images; post-dump; network-unlock when the tree lives on. */
export const DUMP_SCRIPTS_BEFORE = ['pre-dump'] as const;
export const DUMP_SCRIPTS_AFTER = ['network-lock', 'post-dump'] as const;

/** CRIU's order on restore (restore_root_task): the last three come once the tree is complete. */
export const RESTORE_SCRIPTS_BEFORE = ['pre-restore'] as const;
export const RESTORE_SCRIPTS_AFTER = [
  'setup-namespaces', 'post-setup-namespaces', 'post-restore', 'network-unlock', 'pre-resume', 'post-resume',
] as const;

/** Scripts whose notification carries the restored root's pid (CRIU sets it for these two only). */
const WITH_PID: ReadonlySet<string> = new Set(['setup-namespaces', 'post-restore']);

export class ScriptError extends CriuTsError {
  constructor(readonly script: string, cause?: unknown) {
    // errno ECANCELED becomes cr_errno (rpcErrnoOf): the client, not the kernel, stopped us.
    const code = script.includes('dump') || script === 'network-lock' ? 'EDUMP' : 'ERESTORE';
    super(code, `the RPC client reported an error for the ${script} notification`, { script, errno: 125 }, cause);
    this.name = 'ScriptError';
  }
}

export class Notifier {
  private readonly sent = new Set<string>();
  private rootPid: number | undefined;
  /** fds to pass to the client (orphan-pts-master), ours until sent */
  private readonly handedOut: { script: string; fd: number }[] = [];

  /** `enabled` is criu_opts.notify_scripts: without it every call is a no-op. */
  constructor(private readonly conn: RpcConnection, readonly enabled: boolean) {}

  /** The pid CRIU puts in setup-namespaces and post-restore, as the core or the restore's result reports it. */
  setRootPid(pid: number): void {
    this.rootPid = pid;
  }

  has(script: string): boolean {
    return this.sent.has(script);
  }

  /** Send one notification and wait for the client's answer; a negative answer throws ScriptError. */
  async notify(script: string): Promise<void> {
    await this.sendHandedOut();
    if (!this.enabled || this.sent.has(script)) return;
    this.sent.add(script);
    await this.roundTrip(script, WITH_PID.has(script) ? this.rootPid : undefined);
  }

  private async roundTrip(script: string, pid: number | undefined, fd?: number): Promise<void> {
    log.info(`notify ${script}${pid === undefined ? '' : ` pid ${pid}`}${fd === undefined ? '' : ' (with an fd)'}`);
    this.conn.send({ type: 'NOTIFY', success: true, notify: pid === undefined ? { script } : { script, pid } }, fd === undefined ? [] : [fd]);
    const ack = await this.conn.receive(NOTIFY_ACK_TIMEOUT_MS, `answer to the ${script} notification`);
    if (ack === null) throw new ScriptError(script, new Error('the client closed the connection'));
    if (ack.type !== 'NOTIFY' || ack.notify_success !== true) throw new ScriptError(script);
  }

  /**
   * An fd the client gets with the notification `script` (CRIU passes the
   * new master of an orphan pty with orphan-pts-master, SCM_RIGHTS on the
   * NOTIFY response). Sent before the next notification, or by
   * sendHandedOut(); one notification per fd. Ours to close until then.
   */
  handOut(script: string, fd: number): void {
    this.handedOut.push({ script, fd });
  }

  async sendHandedOut(): Promise<void> {
    for (let h = this.handedOut.shift(); h !== undefined; h = this.handedOut.shift()) {
      try {
        await this.roundTrip(h.script, undefined, h.fd);
      } finally {
        closeQuiet(h.fd);
      }
    }
  }

  /** Close what was never sent (a failed restore). */
  dropHandedOut(): void {
    for (const h of this.handedOut.splice(0)) closeQuiet(h.fd);
  }

  /** Send, in order, those of `scripts` nobody has sent yet. */
  async catchUp(scripts: readonly string[]): Promise<void> {
    for (const s of scripts) await this.notify(s);
  }

  /** For the core's `notify` option: notify(), with the root pid the core reports. */
  callback(): ActionNotify {
    return (e: ActionEvent) => {
      this.rootPid = e.rootPid;
      return this.notify(e.point);
    };
  }
}
