import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ApiValidationError, validateAddEndpoint } from '../../../agent/api/validate.js';
import { CidrParseError, formatLabel, LabelParseError, LabelSet, parseCidr, parseLabel, WardError } from '../../../identity/index.js';
import { fuzzRuns, fuzzTimeout, thrown } from './runs.js';

/** Throws unless fn returned or threw an instance of errorType. */
function typedOrOk(errorType: new (...args: never[]) => Error, fn: () => unknown): Error | undefined {
  const err = thrown(fn);
  if (err === undefined) return undefined;
  const typed: boolean = err instanceof errorType;
  if (typed) return err;
  throw new Error(`untyped error ${err.name}: ${err.message}`, { cause: err });
}

const labelText = fc.oneof(fc.string({ maxLength: 30 }), fc.stringMatching(/^[a-z0-9:=;,/. \t-]{0,30}$/), fc.string({ unit: 'binary', maxLength: 20 }));

describe('label parsing fuzzing', () => {
  const runs = fuzzRuns(2000);

  it('parseLabel: LabelParseError or a label that formats and parses back to itself', () => {
    fc.assert(
      fc.property(labelText, (t) => {
        if (typedOrOk(LabelParseError, () => parseLabel(t)) !== undefined) return;
        const l = parseLabel(t);
        expect(l.key).not.toBe('');
        expect(parseLabel(formatLabel(l))).toEqual(l);
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));

  it('LabelSet.parse/parseCsv/fromCanonical: LabelParseError or a set whose canonical form round-trips', () => {
    fc.assert(
      fc.property(fc.array(labelText, { maxLength: 5 }), fc.string({ maxLength: 40 }), (texts, raw) => {
        for (const make of [() => LabelSet.parse(texts), () => LabelSet.parseCsv(texts.join(','))]) {
          if (typedOrOk(LabelParseError, make) !== undefined) continue;
          const set = make();
          expect(LabelSet.fromCanonical(set.canonical).canonical).toBe(set.canonical);
        }
        typedOrOk(LabelParseError, () => LabelSet.fromCanonical(raw));
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));

  it('parseCidr: CidrParseError or a valid prefix', () => {
    const cidr = fc.oneof(fc.string({ maxLength: 20 }), fc.stringMatching(/^[0-9./:]{0,20}$/));
    fc.assert(
      fc.property(cidr, (t) => {
        if (typedOrOk(CidrParseError, () => parseCidr(t)) !== undefined) return;
        const c = parseCidr(t);
        expect(c.len).toBeGreaterThanOrEqual(0);
        expect(c.len).toBeLessThanOrEqual(32);
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));

  it('API endpoint bodies: ApiValidationError or a valid endpoint, never another error', () => {
    const body = fc.oneof(
      fc.anything(),
      fc.record(
        {
          name: fc.oneof(fc.string({ maxLength: 70 }), fc.anything()),
          labels: fc.oneof(fc.array(labelText, { maxLength: 4 }), fc.anything()),
          netns: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('/run/netns/a', '../x', '/a/../b', 'ns1')),
          ip: fc.oneof(fc.string({ maxLength: 16 }), fc.integer()),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(body, (b) => {
        const err = typedOrOk(ApiValidationError, () => validateAddEndpoint(b));
        if (err !== undefined) expect(err).toBeInstanceOf(WardError);
      }),
      { numRuns: runs },
    );
  }, fuzzTimeout(runs));
});
