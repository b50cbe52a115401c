// Runs inside an endpoint netns (spawned with nsenter): reads one JSON command per stdin line,
// answers one JSON line {id, ok, ...}. Keeps listeners and TCP sessions alive between commands
// so tests avoid a process spawn per probe. Plain JS so it starts fast without tsx.
import { createInterface } from 'node:readline';
import net from 'node:net';
import dgram from 'node:dgram';

const servers = [];
const sessions = new Map();
let nextSid = 1;
const reply = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function withTimeout(ms, onTimeout) {
  return setTimeout(onTimeout, ms);
}

const ops = {
  'listen-tcp': (c, done) => {
    const s = net.createServer((sock) => {
      sock.on('data', (d) => sock.write(d));
      sock.on('error', () => {});
    });
    s.listen(c.port, '0.0.0.0', () => done({ ok: true }));
    s.on('error', (e) => done({ ok: false, error: String(e) }));
    servers.push(s);
  },
  'listen-udp': (c, done) => {
    const s = dgram.createSocket('udp4');
    s.on('message', (m, r) => s.send(m, r.port, r.address));
    s.bind(c.port, '0.0.0.0', () => done({ ok: true }));
    servers.push(s);
  },
  // One TCP connect + echo round trip, then close.
  tcp: (c, done) => {
    const sock = net.connect({ host: c.host, port: c.port, ...(c.localPort ? { localPort: c.localPort } : {}) });
    const t = withTimeout(c.timeoutMs, () => { sock.destroy(); done({ ok: false, error: 'timeout' }); });
    sock.on('connect', () => sock.write('hello'));
    sock.on('data', () => { clearTimeout(t); sock.destroy(); done({ ok: true }); });
    sock.on('error', (e) => { clearTimeout(t); done({ ok: false, error: e.code ?? String(e) }); });
  },
  udp: (c, done) => {
    const s = dgram.createSocket('udp4');
    const t = withTimeout(c.timeoutMs, () => { s.close(); done({ ok: false, error: 'timeout' }); });
    s.on('message', () => { clearTimeout(t); s.close(); done({ ok: true }); });
    s.on('error', (e) => { clearTimeout(t); s.close(); done({ ok: false, error: String(e) }); });
    s.send('hello', c.port, c.host);
  },
  'session-open': (c, done) => {
    const sock = net.connect({ host: c.host, port: c.port });
    const t = withTimeout(c.timeoutMs, () => { sock.destroy(); done({ ok: false, error: 'timeout' }); });
    sock.on('connect', () => {
      clearTimeout(t);
      const sid = nextSid++;
      sessions.set(sid, { sock, waiting: null });
      sock.on('data', (d) => { const s = sessions.get(sid); if (s?.waiting) { const w = s.waiting; s.waiting = null; w(d.toString()); } });
      done({ ok: true, sid });
    });
    sock.on('error', (e) => { clearTimeout(t); done({ ok: false, error: e.code ?? String(e) }); });
  },
  'session-send': (c, done) => {
    const s = sessions.get(c.sid);
    if (!s) return done({ ok: false, error: 'no session' });
    const t = withTimeout(c.timeoutMs, () => { s.waiting = null; done({ ok: false, error: 'timeout' }); });
    s.waiting = (data) => { clearTimeout(t); done({ ok: data === c.data, data }); };
    s.sock.write(c.data);
  },
  'session-close': (c, done) => {
    sessions.get(c.sid)?.sock.destroy();
    sessions.delete(c.sid);
    done({ ok: true });
  },
};

createInterface({ input: process.stdin }).on('line', (line) => {
  let c;
  try { c = JSON.parse(line); } catch { return; }
  const op = ops[c.op];
  if (!op) return reply({ id: c.id, ok: false, error: `unknown op ${c.op}` });
  let sent = false;
  op(c, (r) => { if (!sent) { sent = true; reply({ id: c.id, ...r }); } });
});
process.stdin.on('end', () => process.exit(0));
reply({ id: 0, ok: true, ready: true });
