import { request, type IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import { ApiClientError } from './client.js';
import type { MonitorQuery } from './observe-routes.js';
import type { MonitorEventJson } from './observe-types.js';

/**
 * Follows the agent's event stream (GET /v1/monitor, NDJSON). Resolves when the agent ends the
 * stream or `signal` aborts; rejects with ApiClientError when the agent refuses (400/404) or is
 * unreachable (status 0).
 */
export function followMonitor(socketPath: string, q: MonitorQuery, onEvent: (e: MonitorEventJson) => void, signal: AbortSignal): Promise<void> {
  const params = new URLSearchParams();
  if (q.type !== undefined) params.set('type', q.type);
  if (q.endpoint !== undefined) params.set('endpoint', q.endpoint);
  const path = `/v1/monitor${params.size > 0 ? `?${params.toString()}` : ''}`;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve();
    let response: IncomingMessage | undefined;
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      response = res;
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let msg = `HTTP ${status}`;
          try {
            const j = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: string };
            if (typeof j.error === 'string') msg = j.error;
          } catch {
            // keep the status text
          }
          reject(new ApiClientError(status, msg));
        });
        return;
      }
      const lines = createInterface({ input: res });
      lines.on('line', (line) => {
        if (line === '') return;
        try {
          onEvent(JSON.parse(line) as MonitorEventJson);
        } catch (err) {
          req.destroy();
          reject(new ApiClientError(0, `monitor stream: bad line: ${err instanceof Error ? err.message : String(err)}`));
        }
      });
      res.on('error', (err) => {
        if (signal.aborted) return resolve();
        reject(new ApiClientError(0, `monitor stream broke: ${err.message}`, { cause: err }));
      });
      res.on('close', () => resolve());
    });
    const onAbort = (): void => {
      // Destroying the response (not the request) ends the stream without an 'aborted' error.
      if (response !== undefined) response.destroy();
      else req.destroy();
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => {
      if (signal.aborted) return resolve();
      reject(new ApiClientError(0, `cannot reach the agent at ${socketPath}: ${err.message}`, { cause: err }));
    });
    req.end();
  });
}
