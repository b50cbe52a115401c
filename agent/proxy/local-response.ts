/** Answers the proxy gives itself (denied, unparseable, upstream failures). */

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

export const ACCESS_DENIED_BODY = 'Access denied\r\n';

export function localResponse(status: number, body: string, close: boolean): Buffer {
  const text = STATUS_TEXT[status] ?? 'Error';
  return Buffer.from(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`, 'latin1');
}

// Made once: a denied request is answered with the same bytes every time (writes never modify them).
const DENIED = localResponse(403, ACCESS_DENIED_BODY, false);
const DENIED_CLOSE = localResponse(403, ACCESS_DENIED_BODY, true);

export function deniedResponse(close: boolean): Buffer {
  return close ? DENIED_CLOSE : DENIED;
}
