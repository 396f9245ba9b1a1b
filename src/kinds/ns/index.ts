/** The namespace kinds, in the order the core calls them (kinds/index.ts RESOURCE_KINDS). */
import type { ResourceKind } from '../types.js';
import { pidNsKind } from './pid.js';
import { timeNsKind } from './time.js';
import { utsKind } from './uts.js';
import { ipcKind } from './ipc.js';
import { netKind } from './net.js';

export const NS_RESOURCE_KINDS: readonly ResourceKind[] = [pidNsKind, timeNsKind, utsKind, ipcKind, netKind];
