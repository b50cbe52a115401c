import { createHash } from 'node:crypto';

/** The spec's ADD result (the fields ward fills). */
export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces: readonly { readonly name: string; readonly mac?: string; readonly sandbox?: string }[];
  readonly ips: readonly { readonly address: string; readonly gateway?: string; readonly interface?: number; readonly version?: string }[];
  readonly routes: readonly { readonly dst: string; readonly gw?: string }[];
  readonly dns: Record<string, unknown>;
}

/**
 * The agent's endpoint name for one attachment. The spec identifies an attachment by
 * container id, network name and ifname, so all three go into the hash; the id's first 12
 * characters keep `ward endpoint list` readable. Always a valid endpoint name (<= 63).
 */
export function endpointName(containerId: string, network: string, ifname: string): string {
  const hash = createHash('sha256').update(`${containerId}\0${network}\0${ifname}`).digest('hex').slice(0, 10);
  const short = containerId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 12);
  return `cni-${short === '' ? 'x' : short}-${hash}`;
}

/** The first address of an IPv4 CIDR: the agent's gateway for endpoints. */
export function gatewayOf(cidr: string): string {
  const [addr, bits] = cidr.split('/');
  const o = (addr ?? '').split('.').map(Number);
  const len = Number(bits);
  if (o.length !== 4 || o.some((x) => !Number.isInteger(x) || x < 0 || x > 255) || !Number.isInteger(len) || len < 0 || len > 30) {
    throw new RangeError(`not an IPv4 endpoint CIDR: ${cidr}`);
  }
  const n = ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const gw = (((n & mask) >>> 0) + 1) >>> 0;
  return [gw >>> 24, (gw >>> 16) & 255, (gw >>> 8) & 255, gw & 255].join('.');
}

function list(prev: Record<string, unknown> | undefined, key: string): unknown[] {
  const v = prev?.[key];
  return Array.isArray(v) ? (v as unknown[]) : [];
}

/**
 * ADD's result: the container interface (in its sandbox), the endpoint's /32 with the gateway,
 * a default route via the gateway. A chained prevResult's entries come first (ward appends).
 */
export function buildResult(a: {
  readonly cniVersion: string;
  readonly ifname: string;
  readonly netns: string;
  readonly ip: string;
  readonly gateway: string;
  readonly mac?: string;
  readonly prevResult?: Record<string, unknown>;
}): CniResult {
  const prevIfs = list(a.prevResult, 'interfaces') as CniResult['interfaces'];
  const old = a.cniVersion.startsWith('0.3.');
  return {
    cniVersion: a.cniVersion,
    interfaces: [...prevIfs, { name: a.ifname, ...(a.mac !== undefined ? { mac: a.mac } : {}), sandbox: a.netns }],
    ips: [...(list(a.prevResult, 'ips') as CniResult['ips']), { ...(old ? { version: '4' } : {}), address: `${a.ip}/32`, gateway: a.gateway, interface: prevIfs.length }],
    routes: [...(list(a.prevResult, 'routes') as CniResult['routes']), { dst: '0.0.0.0/0', gw: a.gateway }],
    dns: (a.prevResult?.['dns'] as Record<string, unknown> | undefined) ?? {},
  };
}
