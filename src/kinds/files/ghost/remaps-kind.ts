/**
 * The ghost files and link remaps of a restore (index.ts says what they
 * are) as a kind of the tree: made before any task opens or maps a file;
 * the ghosts' names removed once every task holds its files, before any
 * runs (as CRIU's openers remove them), or at the restore's very end after
 * a failure. The dump's temporary links go only after a successful
 * restore: a failed one may be tried again.
 */
import { stateKey } from '../../types.js';
import type { ResourceKind } from '../../resource-kind.js';
import { deadProcPids, materializeRemaps, removeGhosts, removeLinks, removeRemapFds, type MaterializedRemaps } from './restore.js';

/** What this restore made, once it is all made (a failure while making removes its own part). */
const MADE = stateKey<{ made: MaterializedRemaps | undefined }>('remaps:made');

export const remapsKind: ResourceKind = {
  name: 'file-remaps',
  heldPids: (ctx) => deadProcPids(ctx),
  makeFiles(ctx, root) {
    const made = materializeRemaps(ctx, root);
    ctx.state(MADE, () => ({ made: undefined })).made = made;
    // Names in the tree's own mount namespace are fd links of ours: if we die, the guardian cannot reach them.
    // In ours they are fd links too (tree-paths.ts): the guardian is told the plain paths.
    return made.foreign ? [] : made.plain;
  },
  unnameFiles(ctx) {
    const made = ctx.state(MADE, () => ({ made: undefined })).made;
    const names = made?.ghosts.splice(0) ?? [];
    // As the guardian was told them: plain paths (the directories' fds are still open).
    const plain = removeGhosts(names);
    return made?.foreign === false ? plain : [];
  },
  restoreEnded(ctx, ok) {
    const made = ctx.state(MADE, () => ({ made: undefined })).made;
    if (!made) return;
    // Those unnameFiles did not remove (a failed restore): their names must go again.
    removeGhosts(made.ghosts);
    if (ok) removeLinks(ctx, made);
    // Last: the names above may be reached through these fds.
    removeRemapFds(made);
  },
};
