/**
 * The e2e helpers moved to test/lib/harness.ts (shared by every test
 * folder); this re-export keeps the older imports working. New tests
 * import test/lib/harness.js.
 */
export * from '../lib/harness.js';
