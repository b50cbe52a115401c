// Agent memory over the run: VmRSS samples per agent process, and a growth figure that ignores
// start-up (heap and JIT warm-up) and restarts (each process is judged on its own samples).
import { readFileSync } from 'node:fs';

/** Samples younger than this after a process's first sample are warm-up. */
export const RSS_WARMUP_MS = 15_000;
/** A process is judged only when its post-warm-up samples span at least this long. */
export const RSS_JUDGE_MS = 60_000;
/** Last third's median RSS over the first third's, per process: above this the run fails. */
export const RSS_GROWTH_BOUND = 1.5;

/** VmRSS of a process in bytes, undefined when it is gone. */
export function readRss(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

export interface RssGrowth {
  /** Worst ratio over the judged processes, else over all (null: too few samples). */
  readonly ratio: number | null;
  /** True when the ratio comes from processes that ran long enough to judge it. */
  readonly judged: boolean;
  readonly worst: string | undefined;
}

/** Samples per agent process (key: `host pid N`). */
export class RssSamples {
  private readonly byProc = new Map<string, { t: number; rss: number }[]>();
  maxBytes = 0;

  /** One sample; `rss` is read from /proc unless given (tests). */
  add(host: string, pid: number, now: number, rss: number | undefined = readRss(pid)): void {
    if (rss === undefined) return;
    this.maxBytes = Math.max(this.maxBytes, rss);
    const key = `${host} pid ${pid}`;
    let xs = this.byProc.get(key);
    if (xs === undefined) this.byProc.set(key, (xs = []));
    xs.push({ t: now, rss });
  }

  /** Median of the last third vs the first third of each process's post-warm-up samples. */
  growth(): RssGrowth {
    const per: { ratio: number; long: boolean; what: string }[] = [];
    for (const [key, all] of this.byProc) {
      const t0 = all[0]!.t;
      const xs = all.filter((s) => s.t - t0 >= RSS_WARMUP_MS);
      if (xs.length < 6) continue;
      const third = Math.floor(xs.length / 3);
      const ratio = median(xs.slice(-third).map((s) => s.rss)) / median(xs.slice(0, third).map((s) => s.rss));
      const span = xs[xs.length - 1]!.t - xs[0]!.t;
      per.push({ ratio, long: span >= RSS_JUDGE_MS, what: `${key}: x${ratio.toFixed(2)} over ${(span / 1000).toFixed(0)} s` });
    }
    const judged = per.some((p) => p.long);
    const pool = judged ? per.filter((p) => p.long) : per;
    const worst = pool.sort((a, b) => b.ratio - a.ratio)[0];
    return { ratio: worst === undefined ? null : Math.round(worst.ratio * 100) / 100, judged, worst: worst?.what };
  }
}
