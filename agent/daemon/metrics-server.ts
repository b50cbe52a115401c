import { createServer, type Server } from 'node:http';
import { AgentError } from './errors.js';
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';

/** Serves GET /metrics (Prometheus text format) on host:port. */
export class MetricsServer {
  private closed = false;

  private constructor(private readonly server: Server) {}

  static async listen(metrics: AgentMetrics, addr: { readonly host: string; readonly port: number }, log: Logger): Promise<MetricsServer> {
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://ward').pathname;
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics\n');
        return;
      }
      metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (err: unknown) => {
          log.error({ err: err instanceof Error ? err.message : String(err) }, 'metrics collection failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new AgentError(`cannot serve metrics on ${addr.host}:${addr.port}: ${err.message}`, { cause: err })));
      server.listen(addr.port, addr.host, () => resolve());
    });
    log.info({ address: `${addr.host}:${addr.port}` }, 'metrics listening');
    return new MetricsServer(server);
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
