/**
 * Credentials of a thread (they are per thread in the kernel): real,
 * effective, saved and filesystem uids/gids, supplementary groups, the five
 * capability sets (effective, permitted, inheritable, bounding, ambient),
 * securebits and no_new_privs. CRIU's creds_entry inside thread_core_entry
 * (images/creds.proto).
 *
 * Dump reads /proc/PID/task/TID/status (ids, caps, NoNewPrivs) and asks the
 * thread for its securebits. Restore runs inside each thread, in the order
 * the kernel allows: groups; ids with SECURE_NO_SETUID_FIXUP set so that no
 * capability is lost on the way; securebits; the bounding set trimmed;
 * capset; ambient capabilities raised; no_new_privs last.
 *
 * Limits: capabilities can only be lowered. A set in the image that holds a
 * capability the restored thread (that is, criu-ts) does not have is
 * refused before anything changes, as is an image without no_new_privs
 * when criu-ts itself runs with it. LSM labels (lsm_profile, apparmor) are
 * neither dumped nor restored.
 */
import { NR, PR, EPERM, LINUX_CAPABILITY_VERSION_3, SECURE_NO_SETUID_FIXUP_BIT, PR_CAPBSET_DROP, PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_CLEAR_ALL, CAP_SETPCAP, execSecurebits } from '../../sys/index.js';
import { parseStatus, setgroupsDenied, readSysctlInt, inOurUserNs } from '../../proc/index.js';
import type { ProcStatus } from '../../proc/index.js';
import type { CredsEntry, ThreadCoreEntry } from '../../images/messages.js';
import { call, callRaw, type StepHandle, type Steps } from '../steps.js';
import type { DumpThreadView, RestoreThreadView, ThreadKind } from './types.js';
import { RemoteSyscallError } from '../../infect/tracee.js';
import { CriuTsError } from '../../errors.js';

const CAP_SETPCAP_BIT = 1n << BigInt(CAP_SETPCAP);

/** Split a 64-bit capability set into CRIU's two u32 words. */
function capWords(v: bigint): number[] {
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

function capSet(words: number[] | undefined): bigint {
  return BigInt(words?.[0] ?? 0) | (BigInt(words?.[1] ?? 0) << 32n);
}

/** The thread's credentials; `st` is its /proc status, read once by the caller; `secbits`: PR_GET_SECUREBITS asked inside the thread (ThreadAnswers). */
function dumpCreds(st: ProcStatus, secbits: number): CredsEntry {
  const c: CredsEntry = {
    uid: st.uid[0], euid: st.uid[1], suid: st.uid[2], fsuid: st.uid[3],
    gid: st.gid[0], egid: st.gid[1], sgid: st.gid[2], fsgid: st.gid[3],
    cap_inh: capWords(st.capInh),
    cap_prm: capWords(st.capPrm),
    cap_eff: capWords(st.capEff),
    cap_bnd: capWords(st.capBnd),
    secbits,
    no_new_privs: st.noNewPrivs,
    cap_amb: capWords(st.capAmb),
  };
  if (st.groups.length > 0) c.groups = st.groups;
  return c;
}

let lastCap: number | undefined;
function capLastCap(): number {
  lastCap ??= readSysctlInt('kernel/cap_last_cap');
  if (lastCap === undefined) throw new CriuTsError('EINTERNAL', 'cannot read kernel.cap_last_cap');
  return lastCap;
}

function capNames(set: bigint): string {
  const out: number[] = [];
  for (let i = 0; i < 64; i++) if ((set >> BigInt(i)) & 1n) out.push(i);
  return out.join(',');
}

/**
 * Refuse before changing anything when the image asks for more than the
 * thread can get: capabilities are only ever lowered.
 */
function checkReachable(pid: number, tid: number, c: CredsEntry, cur: ProcStatus): void {
  const who = `task ${pid} thread ${tid}`;
  const want: [string, bigint, bigint][] = [
    ['permitted', capSet(c.cap_prm), cur.capPrm],
    ['bounding', capSet(c.cap_bnd), cur.capBnd],
    ['inheritable', capSet(c.cap_inh), cur.capBnd | cur.capInh],
  ];
  for (const [name, img, have] of want) {
    const missing = img & ~have;
    if (missing !== 0n) {
      throw new CriuTsError('EUNSUPPORTED', `${who}: the image's ${name} capability set holds capabilities ${capNames(missing)} that criu-ts does not have; capabilities can only be lowered`, { pid, tid, set: name, missing: `0x${missing.toString(16)}` });
    }
  }
  const amb = capSet(c.cap_amb);
  if ((amb & ~(capSet(c.cap_prm) & capSet(c.cap_inh))) !== 0n) {
    throw new CriuTsError('EIMAGE', `${who}: ambient capabilities ${capNames(amb)} are not both permitted and inheritable`, { pid, tid });
  }
  if (cur.noNewPrivs !== 0 && !c.no_new_privs) {
    throw new CriuTsError('EUNSUPPORTED', `${who}: criu-ts runs with no_new_privs, which the dumped thread did not have (it cannot be cleared)`, { pid, tid });
  }
}

/** capset(v3): header {version, pid 0}, data[2] {effective, permitted, inheritable}. */
function* capset(t: StepHandle, eff: bigint, prm: bigint, inh: bigint): Steps {
  const data = Buffer.alloc(32);
  data.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  const words: [bigint, bigint, bigint] = [eff, prm, inh];
  for (let i = 0; i < 2; i++) {
    words.forEach((w, j) => data.writeUInt32LE(Number((w >> BigInt(32 * i)) & 0xffffffffn), 8 + i * 12 + j * 4));
  }
  const h = t.putBytes(data);
  yield* call('capset', NR.capset, h, h + 8n);
}

/** Most argument bytes credsSteps puts at once (the groups list). */
function credsPutBytes(c: CredsEntry | undefined): number {
  return Math.max(32, (c?.groups?.length ?? 0) * 4 + 16);
}

/**
 * A thread's credentials, as a step procedure (kinds/steps.ts) so that many
 * threads can run it side by side. Credentials go last: once ids and
 * capabilities drop, further injected syscalls may be refused.
 */
function* credsSteps(t: StepHandle, c: CredsEntry, born: RestoreThreadView['born']): Steps {
  const tid = t.tid;
  // A thread the restore made holds its main thread's credentials (types.ts RestoreThreadView born): no status read, no call to ask.
  const cur = born?.status ?? parseStatus(t.pid, tid);
  let secbitsNow = born?.secbits;
  checkReachable(t.pid, tid, c, cur);

  const groups = c.groups ?? [];
  // The kernel keeps a thread's groups sorted (and so shows them): the same
  // set needs no call (a 1000-thread restore: 1000 round trips).
  const sorted = [...groups].sort((a, b) => a - b);
  if (sorted.length !== cur.groups.length || sorted.some((g, i) => g !== cur.groups[i])) {
    const gb = Buffer.alloc(Math.max(4, groups.length * 4));
    groups.forEach((g, i) => gb.writeUInt32LE(g, i * 4));
    const sg = yield* callRaw('setgroups', NR.setgroups, groups.length, t.putBytes(gb));
    // In a user namespace whose setgroups is denied nobody may change the
    // groups: they are the ones its creator had, which the restore gave it
    // (kinds/ns/user.ts), and are the same for every task inside.
    if (sg < 0n && !(Number(-sg) === EPERM && setgroupsDenied(t.pid) && cur.groups.length === groups.length)) {
      throw new RemoteSyscallError('setgroups', Number(-sg), tid);
    }
  }

  const sameIds = cur.uid[0] === c.uid && cur.uid[1] === c.euid && cur.uid[2] === c.suid && cur.uid[3] === c.fsuid
    && cur.gid[0] === c.gid && cur.gid[1] === c.egid && cur.gid[2] === c.sgid && cur.gid[3] === c.fsgid;
  if (!sameIds) {
    // With SECURE_NO_SETUID_FIXUP the kernel leaves every capability set alone across id changes.
    yield* call('prctl(SET_SECUREBITS)', NR.prctl, PR.SET_SECUREBITS, SECURE_NO_SETUID_FIXUP_BIT);
    secbitsNow = SECURE_NO_SETUID_FIXUP_BIT;
    yield* call('setresgid', NR.setresgid, c.gid, c.egid, c.sgid);
    yield* call('setresuid', NR.setresuid, c.uid, c.euid, c.suid);
    yield* call('setfsgid', NR.setfsgid, c.fsgid);
    yield* call('setfsuid', NR.setfsuid, c.fsuid);
  }
  // Still holding CAP_SETPCAP (kept across the id change): trim the bounding set.
  const bnd = capSet(c.cap_bnd);
  for (let cap = 0; cap <= capLastCap(); cap++) {
    const bit = 1n << BigInt(cap);
    if ((bnd & bit) === 0n && (cur.capBnd & bit) !== 0n) yield* call(`prctl(CAPBSET_DROP ${cap})`, NR.prctl, PR_CAPBSET_DROP, cap);
  }
  // Ambient capabilities need them permitted and inheritable, and securebits
  // may forbid raising them (NO_CAP_AMBIENT_RAISE), while securebits need
  // CAP_SETPCAP: so the image's sets plus CAP_SETPCAP first, ambient, securebits, then the exact sets.
  const prm = capSet(c.cap_prm);
  const eff = capSet(c.cap_eff);
  const inh = capSet(c.cap_inh);
  const setpcap = cur.capEff & CAP_SETPCAP_BIT;
  const amb = capSet(c.cap_amb);
  // Its securebits now, unasked where known: what the ids' change above
  // set, or a made thread's (born); else, in our user namespace, the
  // stub's (restore/stub.ts: fork keeps them, nothing of the restore but
  // this sets them). A task that entered another user namespace got 0 there, but is asked.
  const known = secbitsNow ?? (inOurUserNs(t.pid) ? execSecurebits() : undefined);
  const secbits = known ?? Number(yield* call('prctl(GET_SECUREBITS)', NR.prctl, PR.GET_SECUREBITS));
  // The id change kept every capability set (SECURE_NO_SETUID_FIXUP) and
  // the bounding set is not one of these three: sets already as wanted need no call.
  if (cur.capEff !== (eff | setpcap) || cur.capPrm !== (prm | setpcap) || cur.capInh !== inh) yield* capset(t, eff | setpcap, prm | setpcap, inh);
  if (cur.capAmb !== 0n || amb !== 0n) {
    yield* call('prctl(CAP_AMBIENT_CLEAR_ALL)', NR.prctl, PR.CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (let cap = 0; cap < 64; cap++) {
      if ((amb >> BigInt(cap)) & 1n) yield* call(`prctl(CAP_AMBIENT_RAISE ${cap})`, NR.prctl, PR.CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
    }
  }
  if (secbits !== c.secbits) yield* call('prctl(SET_SECUREBITS)', NR.prctl, PR.SET_SECUREBITS, c.secbits);
  if (setpcap !== 0n && ((prm & setpcap) === 0n || (eff & setpcap) === 0n)) yield* capset(t, eff, prm, inh);
  if (c.no_new_privs && cur.noNewPrivs === 0) yield* call('prctl(SET_NO_NEW_PRIVS)', NR.prctl, PR.SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/**
 * Credentials go last among a thread's state (the registry puts this kind
 * after every thread kind that needs privilege); the core runs them in the
 * other threads side by side, then in the main thread.
 */
export const credsKind: ThreadKind<Pick<ThreadCoreEntry, 'creds'>> = {
  name: 'creds',
  dump: (th: DumpThreadView) => ({ creds: dumpCreds(th.status, th.answers.secbits) }),
  restore: {
    final: {
      *steps(sh: StepHandle, th: RestoreThreadView): Steps {
        const c = th.core.thread_core?.creds;
        if (c) yield* credsSteps(sh, c, th.born);
      },
      putBytes: (th) => credsPutBytes(th.core.thread_core?.creds),
    },
  },
  // A clone copies its maker's credentials: one new thread's status, read before any thread's credentials are set, is its siblings'.
  born: { final: (pid, tid) => ({ status: parseStatus(pid, tid) }) },
};
