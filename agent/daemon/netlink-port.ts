import { createVeth, deleteRoute, deleteVeth, enableForwarding, linkExists, replaceRoute, type VethSpec } from '../endpoint/index.js';

/** The link operations the agent needs (kernel by default; tests may inject their own). */
export interface NetlinkPort {
  createVeth(spec: VethSpec): Promise<void>;
  deleteVeth(ifname: string): Promise<void>;
  linkExists(ifname: string): Promise<boolean>;
  enableForwarding(): Promise<void>;
  replaceRoute(cidr: string, via: string): Promise<void>;
  deleteRoute(cidr: string): Promise<void>;
}

/** Link operations in the host namespace: the agent's own, or `hostNetns` (a path). */
export function hostNetlink(hostNetns?: string): NetlinkPort {
  return {
    createVeth: (spec) => createVeth(spec, hostNetns),
    deleteVeth: (ifname) => deleteVeth(ifname, hostNetns),
    linkExists: (ifname) => linkExists(ifname, hostNetns),
    enableForwarding: () => enableForwarding(hostNetns),
    replaceRoute: (cidr, via) => replaceRoute(cidr, via, hostNetns),
    deleteRoute: (cidr) => deleteRoute(cidr, hostNetns),
  };
}
