import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { childLogger, type Logger } from './log.js';

function capture(bindings: Record<string, string>): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger: Logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) }).child(bindings);
  return { logger, lines };
}

const count = (line: string, key: string): number => line.split(`"${key}":`).length - 1;

describe('childLogger', () => {
  it('writes each field once when the parent already binds subsys and node', () => {
    const { logger, lines } = capture({ subsys: 'agent', node: 'n1' });
    const ws = childLogger(childLogger(logger, { node: 'n1' }), { subsys: 'watchstore', node: 'n1', prefix: 'p/' });
    ws.info('hello');
    const line = lines[0]!;
    for (const k of ['subsys', 'node', 'component', 'prefix']) expect(count(line, k)).toBe(1);
    expect(JSON.parse(line)).toMatchObject({ subsys: 'agent', component: 'watchstore', node: 'n1', prefix: 'p/' });
  });

  it('adds its fields to a bare logger', () => {
    const { logger, lines } = capture({});
    childLogger(logger, { subsys: 'kvclient' }).info('x');
    expect(JSON.parse(lines[0]!)).toMatchObject({ subsys: 'kvclient' });
    expect(count(lines[0]!, 'component')).toBe(0);
  });
});
