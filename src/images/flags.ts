/** Values of CRIU's image fields that code compares with (facts from CRIU's images/*.proto and criu/include). */

/** pagemap_entry.flags: the pages are in the parent dump's images */
export const PE_PARENT = 1;
/** pagemap_entry.flags: the pages are served by a lazy-pages daemon */
export const PE_LAZY = 2;
/** pagemap_entry.flags: the pages are in this dump's pages-N.img */
export const PE_PRESENT = 4;

/** task_core_entry.task_state (compel's numbering) */
export const TASK_ALIVE = 1;
export const TASK_DEAD = 2;
export const TASK_STOPPED = 3;
