import { request } from 'node:http';
import { WardError } from '../../identity/index.js';
import type { AddEndpointRequest, EndpointJson, StatusJson, TraceRequest, TraceResult } from './types.js';

/** The agent answered with an error, or could not be reached (`status` 0). */
export class ApiClientError extends WardError {
  constructor(
    readonly status: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Talks to the agent's local API over its unix socket. */
export class ApiClient {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 60_000,
  ) {}

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          path,
          method,
          timeout: this.timeoutMs,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(new ApiClientError(0, `api ${method} ${path}: ${err.message}`, { cause: err })));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text === '' ? undefined : JSON.parse(text);
            } catch {
              return reject(new ApiClientError(res.statusCode ?? 0, `api ${method} ${path}: answer is not JSON`));
            }
            const status = res.statusCode ?? 0;
            if (status >= 400) {
              const msg = typeof json === 'object' && json !== null && 'error' in json ? String(json.error) : `HTTP ${status}`;
              return reject(new ApiClientError(status, msg));
            }
            resolve(json as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(new ApiClientError(0, `cannot reach the agent at ${this.socketPath}: ${err.message}`, { cause: err })));
      req.end(payload);
    });
  }

  /** GET of a JSON route (the observability commands' routes live in their own files). */
  getJson<T>(path: string): Promise<T> {
    return this.call('GET', path);
  }
  status(): Promise<StatusJson> {
    return this.call('GET', '/v1/status');
  }
  listEndpoints(): Promise<EndpointJson[]> {
    return this.call('GET', '/v1/endpoints');
  }
  getEndpoint(name: string): Promise<EndpointJson> {
    return this.call('GET', `/v1/endpoints/${encodeURIComponent(name)}`);
  }
  addEndpoint(req: AddEndpointRequest): Promise<EndpointJson> {
    return this.call('POST', '/v1/endpoints', req);
  }
  tracePolicy(req: TraceRequest): Promise<TraceResult> {
    return this.call('POST', '/v1/policy/trace', req);
  }
  async deleteEndpoint(name: string): Promise<void> {
    await this.call<undefined>('DELETE', `/v1/endpoints/${encodeURIComponent(name)}`);
  }
}
