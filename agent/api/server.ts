import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { WardError } from '../../identity/index.js';
import { EndpointError } from '../endpoint/index.js';
import { TraceInputError, type TraceQuery, type TraceResult } from '../calc/index.js';
import type { EndpointJson, StatusJson } from './types.js';
import { ApiValidationError, validateAddEndpoint, validateEndpointName, validateTraceRequest, type ValidAddEndpoint } from './validate.js';

/** What the API serves; the agent implements it. */
export interface ApiHandler {
  status(): Promise<StatusJson>;
  listEndpoints(): EndpointJson[];
  getEndpoint(name: string): EndpointJson | undefined;
  addEndpoint(req: ValidAddEndpoint): Promise<EndpointJson>;
  deleteEndpoint(name: string): Promise<void>;
  /** Online `ward policy trace` on the live engine and ipcache (TraceInputError: 400). */
  tracePolicy(q: TraceQuery): TraceResult;
}

/** The API socket could not be opened. */
export class ApiServerError extends WardError {}

const MAX_BODY_BYTES = 64 * 1024;

/** Is something listening on the socket (a live agent), rather than a stale file? */
export function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

class HttpError extends WardError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Result of an ApiRoute: not this route (try the next), or the route answered `res` itself. */
export const NOT_MINE = Symbol('not mine');
export const STREAMED = Symbol('streamed');
/** A feature's own routes (agent/api/*-routes.ts): NOT_MINE, STREAMED, or the JSON body (undefined: 204). */
export type ApiRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<unknown>;

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError(400, 'body is not valid JSON'));
      }
    });
  });
}

/**
 * The local HTTP+JSON API on a unix socket, readable and writable by root only (0600 through
 * the umask at bind time, so there is no window with wider permissions).
 *
 *   GET /v1/status   GET /v1/endpoints   GET|DELETE /v1/endpoints/NAME   POST /v1/endpoints
 *   POST /v1/policy/trace
 */
export class ApiServer {
  private server: Server | undefined;
  private closed = false;
  private readonly extraRoutes: ApiRoute[] = [];

  constructor(
    private readonly socketPath: string,
    private readonly handler: ApiHandler,
    private readonly log: Logger,
  ) {}

  /** Registers a feature's routes; tried before the built-in ones. */
  addRoute(route: ApiRoute): void {
    this.extraRoutes.push(route);
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.socketPath), { recursive: true, mode: 0o755 });
    if (await socketInUse(this.socketPath)) throw new ApiServerError(`another agent is serving ${this.socketPath}`);
    rmSync(this.socketPath, { force: true }); // a stale socket of a dead agent
    const server = createServer((req, res) => void this.serve(req, res));
    this.server = server;
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new ApiServerError(`cannot listen on ${this.socketPath}: ${err.message}`, { cause: err })));
        server.listen(this.socketPath, () => resolve());
      });
    } finally {
      process.umask(old);
    }
    chmodSync(this.socketPath, 0o600);
    this.log.info({ socket: this.socketPath }, 'api listening');
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    let status = 200;
    let body: unknown;
    try {
      body = await this.route(req, res);
      if (body === STREAMED) return;
      if (body === undefined) status = 204;
      else if (req.method === 'POST' && !(req.url ?? '').startsWith('/v1/policy/')) status = 201; // a trace creates nothing
    } catch (err) {
      status = err instanceof HttpError ? err.status : err instanceof ApiValidationError || err instanceof TraceInputError ? 400 : err instanceof EndpointError ? err.status : 500;
      body = { error: err instanceof Error ? err.message : String(err) };
      if (res.headersSent) {
        res.end(); // a stream that failed midway
        return;
      }
      if (status >= 500) this.log.error({ err, method: req.method, url: req.url }, 'api request failed');
    }
    const text = body === undefined ? '' : `${JSON.stringify(body)}\n`;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    this.log.debug({ method: req.method, url: req.url, status, ms: Date.now() - started }, 'api request');
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
    const url = new URL(req.url ?? '/', 'http://ward');
    for (const r of this.extraRoutes) {
      const b = await r(req, res, url);
      if (b !== NOT_MINE) return b;
    }
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const m = req.method ?? 'GET';
    if (parts[0] !== 'v1') throw new HttpError(404, `no route ${url.pathname}`);
    if (parts[1] === 'status' && parts.length === 2 && m === 'GET') return this.handler.status();
    if (parts[1] === 'endpoints' && parts.length === 2) {
      if (m === 'GET') return this.handler.listEndpoints();
      if (m === 'POST') {
        if (!(req.headers['content-type'] ?? '').startsWith('application/json')) throw new HttpError(415, 'content-type must be application/json');
        return this.handler.addEndpoint(validateAddEndpoint(await readJson(req)));
      }
      throw new HttpError(405, `${m} not allowed on /v1/endpoints`);
    }
    if (parts[1] === 'endpoints' && parts.length === 3) {
      const name = validateEndpointName(decodeURIComponent(parts[2]!));
      if (m === 'GET') {
        const ep = this.handler.getEndpoint(name);
        if (ep === undefined) throw new HttpError(404, `no endpoint ${JSON.stringify(name)}`);
        return ep;
      }
      if (m === 'DELETE') {
        await this.handler.deleteEndpoint(name);
        return undefined;
      }
      throw new HttpError(405, `${m} not allowed on /v1/endpoints/NAME`);
    }
    if (parts[1] === 'policy' && parts[2] === 'trace' && parts.length === 3) {
      if (m !== 'POST') throw new HttpError(405, `${m} not allowed on /v1/policy/trace`);
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) throw new HttpError(415, 'content-type must be application/json');
      return this.handler.tracePolicy(validateTraceRequest(await readJson(req)));
    }
    throw new HttpError(404, `no route ${m} ${url.pathname}`);
  }

  /** Idempotent: stops accepting, ends idle connections, removes the socket file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const server = this.server;
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    rmSync(this.socketPath, { force: true });
  }
}
