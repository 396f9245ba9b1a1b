/**
 * A thread's parent-death signal (prctl PR_SET_PDEATHSIG; thread_core_entry
 * pdeath_sig): asked inside each thread with the other thread questions
 * (ThreadAnswers), set again inside it at its final point. A change of ids
 * clears it in the kernel, so the registry puts this kind after the
 * credentials.
 */
import { NR, PR } from '../../sys/index.js';
import type { ThreadCoreEntry } from '../../images/messages.js';
import { call, type StepHandle, type Steps } from '../steps.js';
import type { DumpThreadView, RestoreThreadView, ThreadKind } from './types.js';

function* restorePdeath(_sh: StepHandle, th: RestoreThreadView): Steps {
  const sig = th.core.thread_core?.pdeath_sig;
  if (sig) yield* call('prctl(SET_PDEATHSIG)', NR.prctl, PR.SET_PDEATHSIG, sig);
}

export const pdeathKind: ThreadKind<Pick<ThreadCoreEntry, 'pdeath_sig'>> = {
  name: 'pdeath-signal',
  dump: (th: DumpThreadView) => (th.answers.pdeathSig !== 0 ? { pdeath_sig: th.answers.pdeathSig } : {}),
  restore: { final: { steps: restorePdeath, putBytes: () => 0 } },
};
