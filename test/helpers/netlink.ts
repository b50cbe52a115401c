import type { NetlinkPort } from '../../agent/daemon/index.js';

/** Link and route operations that do nothing: for agents on a fake datapath that need no links. */
export const noopNetlink: NetlinkPort = {
  replaceRoute: async () => undefined,
  deleteRoute: async () => undefined,
  createVeth: async () => undefined,
  deleteVeth: async () => undefined,
  linkExists: async () => false,
  enableForwarding: async () => undefined,
};
