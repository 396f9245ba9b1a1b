/**
 * One RPC connection: criu_req in, criu_resp out, one protobuf message per
 * SOCK_SEQPACKET packet (CRIU's framing: none). Waiting is done in short
 * poll() slices with the event loop turning between them, so timers of a
 * dump or restore in progress keep running, and a client that dies is seen
 * at once (POLLHUP) instead of hanging us.
 */
import { CriuTsError } from '../errors.js';
import { decodeMessage, encodeMessage } from '../images/index.js';
import type { CriuReq, CriuResp } from '../images/messages.js';
import { logger } from '../log.js';
import {
  POLLERR, POLLHUP, POLLIN, POLLNVAL, closeQuiet, peerCred, pollFd, recvPacket, sendPacket,
} from '../sys/index.js';
import type { PeerCred } from '../sys/index.js';
import { identifyCaller } from './caller.js';
import type { Caller } from './caller.js';

const log = logger('rpc');

/** Poll slice: short enough that the event loop stays responsive, long enough to cost nothing. */
const POLL_SLICE_MS = 20;

/** Where the requests come from: a socket we inherited (swrk) or accepted from the service's listener. */
export type RpcMode = 'swrk' | 'service';

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export class RpcConnection {
  private cred: PeerCred | undefined;
  private who: Caller | undefined;
  private closed = false;

  constructor(readonly fd: number, readonly mode: RpcMode) {}

  /** The client process (SO_PEERCRED): its pid names /proc/PID/fd/N for images_dir_fd. */
  peer(): PeerCred {
    this.cred ??= peerCred(this.fd);
    return this.cred;
  }

  /** Who connected, and with which rights (rpc/caller.ts); asked once per connection. */
  caller(): Caller {
    this.who ??= identifyCaller(this.fd, this.peer());
    return this.who;
  }

  /**
   * Wait until a packet (or the end of the stream) is there. Resolves true
   * when readable, false at hang-up with nothing left to read.
   */
  async waitReadable(timeoutMs: number | undefined, what: string): Promise<boolean> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      const rev = pollFd(this.fd, POLLIN, POLL_SLICE_MS);
      if ((rev & POLLNVAL) !== 0) throw new CriuTsError('EINTERNAL', `RPC socket ${this.fd} is not open`, { fd: this.fd });
      // Data queued before a hang-up is still delivered: POLLIN wins.
      if ((rev & POLLIN) !== 0) return true;
      if ((rev & (POLLHUP | POLLERR)) !== 0) return false;
      if (Date.now() > deadline) {
        throw new CriuTsError('ETIMEOUT', `RPC client sent no ${what} within ${Math.round((timeoutMs ?? 0) / 1000)} s`, { what });
      }
      await yieldToLoop();
    }
  }

  /** The next request, or null when the client closed its end. */
  async receive(timeoutMs: number | undefined, what = 'request'): Promise<CriuReq | null> {
    if (!(await this.waitReadable(timeoutMs, what))) return null;
    const pkt = recvPacket(this.fd);
    if (pkt === null) return null;
    let req: CriuReq;
    try {
      req = decodeMessage('criu_req', pkt.data) as unknown as CriuReq;
    } catch (e) {
      throw new CriuTsError('EUSAGE', `cannot decode the RPC request (${pkt.data.length} bytes)`, { bytes: pkt.data.length }, e);
    }
    log.debug(`<- ${String(req.type)}${req.keep_open === true ? ' (keep_open)' : ''}`);
    return req;
  }

  send(resp: CriuResp, fds: readonly number[] = []): void {
    log.debug(`-> ${String(resp.type)} success=${String(resp.success)}${resp.cr_errno === undefined ? '' : ` cr_errno=${resp.cr_errno}`}`);
    sendPacket(this.fd, encodeMessage('criu_resp', resp as unknown as Record<string, unknown>), fds);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuiet(this.fd);
  }
}
