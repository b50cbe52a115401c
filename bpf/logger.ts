/** The slice of pino's Logger the datapath uses (a pino Logger satisfies it). */
export interface DatapathLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const noop = (): void => undefined;
export const silentLogger: DatapathLogger = { debug: noop, info: noop, warn: noop, error: noop };
