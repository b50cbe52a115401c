import { describe, expect, it } from 'vitest';
import type { MonitorL7EventJson } from '../api/index.js';
import { eventLine } from './observe-commands.js';

const L7: MonitorL7EventJson = {
  type: 'l7',
  timeMs: 1,
  endpoint: 'web',
  endpointId: 3,
  identity: 400,
  labels: ['app=web'],
  direction: 'ingress',
  sourceIdentity: 300,
  sourceLabels: ['app=client'],
  destinationIdentity: 400,
  destinationLabels: ['app=web'],
  source: '10.0.0.2:41000',
  destination: '10.0.0.3:80',
  method: 'GET',
  path: '/private',
  host: 'web.local',
  verdict: 'denied',
  status: 403,
  reason: 'no HTTP rule matches',
};

describe('ward monitor text lines', () => {
  it('L7 request decisions read like a request log with identities', () => {
    expect(eventLine(L7)).toBe(
      'HTTP DENIED ingress endpoint web (400): GET http://web.local/private => 403, 10.0.0.2:41000 (identity 300 app=client) -> 10.0.0.3:80 (identity 400 app=web): no HTTP rule matches\n',
    );
    const { host: _host, status: _status, sourceLabels: _labels, ...rest } = L7;
    expect(eventLine({ ...rest, verdict: 'allowed', path: '/public/a', reason: 'allowed by rule' })).toBe(
      'HTTP ALLOWED ingress endpoint web (400): GET http://10.0.0.3:80/public/a => forwarded, 10.0.0.2:41000 (identity 300 ?) -> 10.0.0.3:80 (identity 400 app=web): allowed by rule\n',
    );
    expect(eventLine({ ...L7, method: '', path: '', verdict: 'invalid', status: 400, reason: 'bad request line' })).toMatch(/^HTTP INVALID ingress endpoint web \(400\): \(unparseable request\) => 400, /);
  });

  it('datapath events keep their line', () => {
    const line = eventLine({ type: 'drop', reason: 130, reasonName: 'policy-denied', direction: 'ingress', endpointId: 1, endpoint: 'db', identity: 5, remoteIdentity: 2, protocol: 'TCP', saddr: '1.1.1.1', sport: 1, daddr: '2.2.2.2', dport: 2, length: 60, proxyPort: 0 });
    expect(line).toBe('DROP (policy-denied) ingress endpoint db (5), remote identity 2 ?: 1.1.1.1:1 -> 2.2.2.2:2 TCP\n');
  });
});
