import { cidrContainsIp, formatIPv4, parseCidr, parseIPv4, type Cidr4 } from '../../identity/index.js';
import { EndpointConflictError, EndpointInvalidError } from './errors.js';

/**
 * Endpoint addresses of one host's CIDR. The first host address is the gateway every endpoint
 * routes through (it sits on each host-side veth as a /32); endpoints get the others. Pure.
 */
export class Ipam {
  readonly cidr: Cidr4;
  readonly gateway: string;
  private readonly first: number;
  private readonly last: number;

  constructor(cidrText: string) {
    this.cidr = parseCidr(cidrText);
    const size = 2 ** (32 - this.cidr.len);
    this.first = this.cidr.addr + 1;
    this.last = this.cidr.addr + size - 2;
    this.gateway = formatIPv4(this.first);
  }

  /** The lowest free address; `used` holds addresses in use. */
  next(used: ReadonlySet<string>): string {
    for (let n = this.first + 1; n <= this.last; n++) {
      const ip = formatIPv4(n);
      if (!used.has(ip)) return ip;
    }
    throw new EndpointConflictError(`no free address left in ${formatIPv4(this.cidr.addr)}/${this.cidr.len}`);
  }

  /** Checks a requested address: inside the CIDR, not network/gateway/broadcast, not in use. */
  check(ip: string, used: ReadonlySet<string>): string {
    const n = parseIPv4(ip);
    if (n === undefined) throw new EndpointInvalidError(`ip ${JSON.stringify(ip)} is not an IPv4 address`);
    const canonical = formatIPv4(n);
    const range = `${formatIPv4(this.cidr.addr)}/${this.cidr.len}`;
    if (!cidrContainsIp(this.cidr, n)) throw new EndpointInvalidError(`ip ${canonical} is outside this node's endpoint CIDR ${range}`);
    if (n < this.first + 1 || n > this.last) throw new EndpointInvalidError(`ip ${canonical} is the network, gateway or broadcast address of ${range}`);
    if (used.has(canonical)) throw new EndpointConflictError(`ip ${canonical} is already used by another endpoint`);
    return canonical;
  }
}
