import { describe, expect, it } from 'vitest';
import { PolicyValidationError } from '../policy/index.js';
import { PolicyDocumentError } from './errors.js';
import { policyRulesFromValue, policyValueFromText } from './policy-values.js';

const CNP = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: three }
spec:
  endpointSelector: { matchLabels: { app: db } }
  ingress: [{ fromEndpoints: [{ matchLabels: { app: api } }] }]
specs:
  - endpointSelector: { matchLabels: { app: api } }
    ingress: [{ fromEndpoints: [{ matchLabels: { app: web } }], toPorts: [{ ports: [{ port: "8080", protocol: TCP }] }] }]
---
- endpointSelector: { matchLabels: { app: web } }
  egress: [{ toEntities: [world] }]
`;

describe('policy values', () => {
  it('turns a file into the stored value and back into the same rules', () => {
    const v = policyValueFromText(CNP, 'p.yaml', undefined, 5);
    expect(v).toMatchObject({ v: 1, name: 'three', updatedAtMs: 5 });
    expect(v.rules).toHaveLength(3);
    const rules = policyRulesFromValue(v);
    expect(rules.map((r) => r.ingress.length + r.egress.length)).toEqual([1, 1, 1]);
    expect(policyValueFromText(CNP, 'p.yaml', 'other', 0).name).toBe('other');
  });

  it('rejects invalid files whole, and asks for a name when there is none', () => {
    expect(() => policyValueFromText('endpointSelector: {}\ningress: [{ fromCIDR: ["300.0.0.0/8"] }]\n', 'bad.yaml', 'x', 0)).toThrow(PolicyValidationError);
    expect(() => policyValueFromText('endpointSelector: {}\n', 'anon.yaml', undefined, 0)).toThrow(PolicyDocumentError);
    expect(() => policyValueFromText('endpointSelector: {}\n', 'anon.yaml', 'Bad/Name', 0)).toThrow(/policy name/);
  });
});
