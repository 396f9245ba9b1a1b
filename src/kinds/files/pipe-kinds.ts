/** The pipe, FIFO and unix socket kinds, in the order the registry asks them. */
import type { FileKind } from '../types.js';
import { pipeKind } from './pipe.js';
import { fifoKind } from './fifo.js';
import { unixSocketKind } from './unix-socket/index.js';

export const PIPE_FILE_KINDS: readonly FileKind[] = [pipeKind, fifoKind, unixSocketKind];
