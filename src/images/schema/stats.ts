/**
 * Dump/restore statistics (CRIU images/stats.proto): stats-dump / stats-restore.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('dump_stats_entry', [
  f(1, 'freezing_time', 'required', 'uint32'),
  f(2, 'frozen_time', 'required', 'uint32'),
  f(3, 'memdump_time', 'required', 'uint32'),
  f(4, 'memwrite_time', 'required', 'uint32'),
  f(5, 'pages_scanned', 'required', 'uint64'),
  f(6, 'pages_skipped_parent', 'required', 'uint64'),
  f(7, 'pages_written', 'required', 'uint64'),
  f(8, 'irmap_resolve', 'optional', 'uint32'),
  f(9, 'pages_lazy', 'required', 'uint64'),
  f(10, 'page_pipes', 'optional', 'uint64'),
  f(11, 'page_pipe_bufs', 'optional', 'uint64'),
  f(12, 'shpages_scanned', 'optional', 'uint64'),
  f(13, 'shpages_skipped_parent', 'optional', 'uint64'),
  f(14, 'shpages_written', 'optional', 'uint64'),
]);
defineMessage('restore_stats_entry', [
  f(1, 'pages_compared', 'required', 'uint64'),
  f(2, 'pages_skipped_cow', 'required', 'uint64'),
  f(3, 'forking_time', 'required', 'uint32'),
  f(4, 'restore_time', 'required', 'uint32'),
  f(5, 'pages_restored', 'optional', 'uint64'),
]);
defineMessage('stats_entry', [
  f(1, 'dump', 'optional', 'message', { ref: 'dump_stats_entry' }),
  f(2, 'restore', 'optional', 'message', { ref: 'restore_stats_entry' }),
]);
