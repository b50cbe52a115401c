import { toBpfError } from '../errors.js';
import type { DatapathLogger } from '../logger.js';
import { ebpf } from '../napi/index.js';
import type { RingBufferReaderNative } from '../napi/index.js';
import { decodeEvent } from './layout.js';
import type { DatapathEvent } from './layout.js';

export type EventListener = (events: readonly DatapathEvent[]) => void;

export interface EventSubscription {
  close(): void;
}

/**
 * Reads the ward_events ring buffer on Node's event loop (epoll fd under a uv poll handle, no
 * thread blocks) and fans decoded events out to listeners. A ring has one consumer position,
 * so one reader per map; it runs while at least one listener is subscribed.
 */
export class EventHub {
  private reader: RingBufferReaderNative | undefined;
  private readonly listeners = new Set<EventListener>();

  constructor(
    private readonly ringFd: () => number,
    private readonly log: DatapathLogger,
  ) {}

  subscribe(listener: EventListener): EventSubscription {
    this.listeners.add(listener);
    if (!this.reader) {
      try {
        this.reader = new (ebpf().RingBufferReader)(this.ringFd(), (bufs) => this.deliver(bufs));
      } catch (e) {
        this.listeners.delete(listener);
        throw toBpfError(e);
      }
    }
    let open = true;
    return {
      close: () => {
        if (!open) return;
        open = false;
        this.listeners.delete(listener);
        if (this.listeners.size === 0) this.stop();
      },
    };
  }

  /** Drains the ring synchronously (delivering to listeners); returns the number of events. */
  poll(): number {
    return this.reader ? this.reader.consume() : 0;
  }

  close(): void {
    this.listeners.clear();
    this.stop();
  }

  private stop(): void {
    this.reader?.close();
    this.reader = undefined;
  }

  private deliver(bufs: Buffer[]): void {
    const events: DatapathEvent[] = [];
    for (const b of bufs) {
      try {
        events.push(decodeEvent(b));
      } catch (e) {
        this.log.warn({ err: e, bytes: b.length }, 'datapath: undecodable event skipped');
      }
    }
    for (const l of [...this.listeners]) {
      try {
        l(events);
      } catch (e) {
        this.log.error({ err: e }, 'datapath: event listener threw');
      }
    }
  }
}
