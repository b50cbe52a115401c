import type { Direction } from '../../bpf/policy-map/types.js';
import { ProxyError } from './errors.js';

/**
 * Proxy ports for (endpoint, direction, protocol, port) tuples: stable while in use, the lowest
 * free port of the range for a new tuple. `retain` frees the tuples no entry uses any more.
 * Synchronous and cheap: the policy engine calls it during flush.
 */
export class ProxyPortAllocator {
  private readonly byKey = new Map<string, number>();
  private readonly used = new Set<number>();
  private next: number;

  constructor(
    private readonly first = 15000,
    private readonly last = 19999,
  ) {
    if (!(first >= 1024 && last <= 65535 && first <= last)) throw new ProxyError(`proxy port range ${first}-${last} is invalid (1024..65535, first <= last)`);
    this.next = first;
  }

  readonly portFor = (endpoint: string, direction: Direction, protocol: number, port: number): number => {
    const key = `${endpoint}|${direction}|${protocol}|${port}`;
    const have = this.byKey.get(key);
    if (have !== undefined) return have;
    const size = this.last - this.first + 1;
    for (let i = 0; i < size; i++) {
      const p = this.first + ((this.next - this.first + i) % size);
      if (this.used.has(p)) continue;
      this.used.add(p);
      this.byKey.set(key, p);
      this.next = p + 1 > this.last ? this.first : p + 1;
      return p;
    }
    throw new ProxyError(`no free proxy port in ${this.first}-${this.last}`);
  };

  /** Frees every port whose number is not in `inUse`. */
  retain(inUse: ReadonlySet<number>): void {
    for (const [k, p] of this.byKey) {
      if (inUse.has(p)) continue;
      this.byKey.delete(k);
      this.used.delete(p);
    }
  }
}
