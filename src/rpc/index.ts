/**
 * CRIU's RPC service over SOCK_SEQPACKET (`criu-ts swrk FD`, `criu-ts
 * service`): what runc, podman, go-criu, libcriu and pycriu speak. A thin
 * layer over src/api; docs/rpc.md lists what is supported.
 */
export { runSwrk, runService, serveConnection, DEFAULT_SERVICE_ADDRESS } from './service.js';
export type { ServiceOptions } from './service.js';
export { RpcConnection } from './transport.js';
export type { RpcMode } from './transport.js';
export { handleRequest, RPC_COMPAT_VERSION } from './handlers.js';
