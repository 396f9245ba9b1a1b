/**
 * The namespace kinds, in the order the core calls them (kinds/index.ts
 * RESOURCE_KINDS). The user namespace comes first: the root is born in it,
 * its maps are written before anything else is done in the root, and the
 * namespaces the kinds after it unshare in the root are then owned by it.
 */
import type { ResourceKind } from '../types.js';
import { userNsKind } from './user.js';
import { pidNsKind } from './pid.js';
import { timeNsKind } from './time.js';
import { utsKind } from './uts.js';
import { ipcKind } from './ipc.js';
import { netKind } from './net.js';

export const NS_RESOURCE_KINDS: readonly ResourceKind[] = [userNsKind, pidNsKind, timeNsKind, utsKind, ipcKind, netKind];
