import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive, logTail, spawnDetached, stopProc, type DevProc } from './procs.js';

const dir = mkdtempSync(join(tmpdir(), 'ward-procs-'));
const started: DevProc[] = [];

afterAll(async () => {
  for (const p of started) await stopProc(p, { termMs: 0, group: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('dev processes', () => {
  it('spawns detached with output in the log, and stops the whole group by PID', async () => {
    const log = join(dir, 'a.log');
    const p = spawnDetached('sh', ['-c', 'echo started; sleep 30 & sleep 30'], log);
    started.push(p);
    expect(p.startTime).toMatch(/^\d+$/);
    expect(isAlive(p)).toBe(true);
    for (let i = 0; i < 500 && !readFileSync(log, 'utf8').includes('started'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(logTail(log)).toBe('started');
    await stopProc(p, { termMs: 1000, group: true });
    expect(isAlive(p)).toBe(false);
  });

  it('never treats a reused PID as the recorded process', () => {
    const p = spawnDetached('sleep', ['30'], join(dir, 'b.log'));
    started.push(p);
    expect(isAlive({ pid: p.pid, startTime: `${p.startTime}1` })).toBe(false);
    expect(isAlive({ pid: 2 ** 22 + 7, startTime: '1' })).toBe(false);
    expect(isAlive(undefined)).toBe(false);
  });

  it('reports a missing binary', () => {
    expect(() => spawnDetached('/nonexistent/ward-x', [], join(dir, 'c.log'))).toThrow(/cannot start \/nonexistent\/ward-x/);
  });
});
