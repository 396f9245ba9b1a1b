/**
 * The client of `npm run demo:migrate` (runs in the "client host" net
 * namespace): connects to the migrated server, reads its lines ("tick N pid
 * P pages-bad B"), answers each with an ack, and prints every 10th tick,
 * anything wrong (a tick missing or repeated, bad pages, the connection
 * lost) and, on SIGTERM or when the connection ends, one summary line the
 * demo reads:
 *   summary ticks=T last=N gaps=G bad=B longest-pause-ms=M pids=P1,P2 open=1
 */
import { connect } from 'node:net';

const [host, portText] = process.argv.slice(2);
const port = Number(portText);
if (!host || !Number.isInteger(port)) {
  process.stderr.write('usage: migrate-client ADDR PORT\n');
  process.exit(2);
}

const LINE = /^tick (\d+) pid (\d+) pages-bad (\d+)$/;
let ticks = 0;
let last = 0;
let gaps = 0;
let bad = 0;
let open = false;
let lastAt = 0;
let longest = 0;
const pids = new Set<number>();
const say = (s: string): void => { process.stdout.write(`${s}\n`); };

function summary(): void {
  say(`summary ticks=${ticks} last=${last} gaps=${gaps} bad=${bad} longest-pause-ms=${longest} pids=${[...pids].join(',')} open=${open ? 1 : 0}`);
}

const sk = connect(port, host);
sk.setNoDelay(true);
sk.on('connect', () => {
  open = true;
  say(`client: connected to ${host}:${port}`);
});
let pending = '';
sk.on('data', (d: Buffer) => {
  pending += d.toString('latin1');
  for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
    const line = pending.slice(0, i);
    pending = pending.slice(i + 1);
    const m = LINE.exec(line);
    if (!m) {
      say(`client: unexpected line from the server: ${JSON.stringify(line)}`);
      gaps++;
      continue;
    }
    const [tick, pid, b] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const now = Date.now();
    if (lastAt > 0) longest = Math.max(longest, now - lastAt);
    lastAt = now;
    if (tick !== last + 1) {
      say(`client: tick ${last} was followed by tick ${tick}`);
      gaps++;
    }
    if (b > bad) say(`client: the server finds ${b} page(s) of its memory wrong`);
    bad = Math.max(bad, b);
    pids.add(pid);
    last = tick;
    ticks++;
    if (tick % 10 === 0) say(`client: tick ${tick} from pid ${pid}, memory ${b === 0 ? 'checked, all pages right' : `${b} bad page(s)`}`);
    sk.write(`ack ${tick}\n`);
  }
});
sk.on('error', (e) => say(`client: connection error: ${e.message}`));
sk.on('close', () => {
  if (open) say(`client: the connection closed after tick ${last}`);
  open = false;
  summary();
  process.exit(0);
});
process.on('SIGTERM', () => {
  summary();
  process.exit(0);
});
