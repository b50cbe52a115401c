import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../policy/index.js';
import { expectedMatrix, renderMatrix, sameMatrix } from './matrix.js';

const W = [
  { name: 'web', labels: ['app=web'], ip: '10.0.1.2' },
  { name: 'db', labels: ['app=db'], ip: '10.0.2.2' },
];
const SOURCES = W.map((w) => ({ name: w.name, netns: `x-${w.name}` }));
const TARGETS = [
  { name: 'web', ip: '10.0.1.2', port: 80 },
  { name: 'db', ip: '10.0.2.2', port: 5432 },
];

describe('connectivity matrix', () => {
  it('expects all allowed without policy and follows the policy with one', () => {
    expect(expectedMatrix(W, [], SOURCES, TARGETS)).toEqual([
      [undefined, true],
      [true, undefined],
    ]);
    const p = parsePolicy('- endpointSelector: {matchLabels: {app: web}}\n  ingress: [{fromEndpoints: [{matchLabels: {app: nobody}}]}]\n', 'p.yaml');
    expect(expectedMatrix(W, [p], SOURCES, TARGETS)).toEqual([
      [undefined, true],
      [false, undefined],
    ]);
  });

  it('renders cells and marks the ones that differ from the expectation', () => {
    const text = renderMatrix(SOURCES, TARGETS, [[undefined, true], [true, undefined]], [[undefined, true], [false, undefined]]);
    expect(text.split('\n')[0]).toMatch(/^FROM \\ TO\s+web:80\s+db:5432$/);
    expect(text).toMatch(/db\s+allow!\s+-/);
    expect(sameMatrix([[undefined, true]], [[undefined, true]])).toBe(true);
    expect(sameMatrix([[undefined, true]], [[undefined, false]])).toBe(false);
  });
});
