/**
 * Oracle test: images written by our encoder are read by Debian's crit 3.17
 * (its pycriu library, the code behind /usr/bin/crit) to the same JSON that
 * crit-ts prints, plain and --pretty. Covers every vector image where 3.17
 * and 4.2 agree (see the vectors README for what 3.17 drops) and hand-built
 * entries with u64 extremes, negative numbers, nested and repeated fields,
 * quoted-printable names, IPv6 addresses, dev/odev fields and payloads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImage, encodeImage, encodeMessage } from '../../src/images/index.js';
import type { Message } from '../../src/images/index.js';
import { imageBytesToJsonText, jsonTextToImageBytes } from '../../src/images/json/index.js';
import { vectorImages, vectorsMissing } from './vectors.js';

const CRIT = '/usr/bin/crit';
const PYCRIU = '/usr/lib/python3/dist-packages/pycriu';
const noCrit = existsSync(CRIT) && existsSync(PYCRIU) ? undefined : 'Debian crit 3.17 not installed (apt-get install -y criu)';

/** Decode many files in one python process, exactly as `crit decode [--pretty] -o` would write them. */
const PY = `
import sys, json
sys.path.insert(0, '/usr/lib/python3/dist-packages')
import pycriu
out = {}
for path in json.load(sys.stdin):
    for pretty in (False, True):
        try:
            img = pycriu.images.load(open(path, 'rb'), pretty)
            out[path + ('#pretty' if pretty else '#plain')] = json.dumps(img, indent=4 if pretty else None)
        except Exception as e:
            out[path + ('#pretty' if pretty else '#plain')] = 'ERROR ' + repr(e)
    try:
        out[path + '#nopl'] = json.dumps(pycriu.images.load(open(path, 'rb'), True, True), indent=4)
    except Exception as e:
        out[path + '#nopl'] = 'ERROR ' + repr(e)
    # and crit's encoder, fed its own pretty JSON, must write our bytes back
    try:
        img = json.loads(out[path + '#pretty'])
        out[path + '#encoded'] = pycriu.images.dumps(img).hex()
    except Exception as e:
        out[path + '#encoded'] = 'ERROR ' + repr(e)
json.dump(out, sys.stdout)
`;

function crit317(paths: string[]): Record<string, string> {
  const r = spawnSync('python3', ['-c', PY], { input: JSON.stringify(paths), encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, string>;
}

function compare(paths: { path: string; name: string; encodeBroken?: boolean }[]): void {
  const got = crit317(paths.map((p) => p.path));
  for (const { path, name, encodeBroken } of paths) {
    const buf = readFileSync(path);
    for (const pretty of [false, true]) {
      const theirs = got[`${path}#${pretty ? 'pretty' : 'plain'}`];
      assert.equal(imageBytesToJsonText(buf, name, { pretty }), theirs, `${name} pretty=${pretty}`);
    }
    assert.equal(imageBytesToJsonText(buf, name, { pretty: true, nopl: true }), got[`${path}#nopl`], `${name} --nopl`);
    if (encodeBroken === true) assert.match(got[`${path}#encoded`] ?? '', /^ERROR/, `${name}: crit 3.17 still cannot encode this`);
    else assert.equal(got[`${path}#encoded`], buf.toString('hex'), `${name}: crit 3.17 encodes its JSON to our bytes`);
  }
}

test('crit 3.17 reads our re-encoded vectors like crit-ts does (where 3.17 and 4.2 agree)', { skip: noCrit ?? vectorsMissing() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'crit-oracle-'));
  try {
    const todo: { path: string; name: string }[] = [];
    for (const v of vectorImages()) {
      const j317 = join(v.base, 'json-3.17', `${v.file}.pretty.json`);
      const j42 = join(v.base, 'json-4.2', `${v.file}.pretty.json`);
      if (!existsSync(j317) || readFileSync(j317, 'utf8') !== readFileSync(j42, 'utf8')) continue;
      const img = decodeImage(readFileSync(v.path), v.file);
      const out = join(dir, `${v.subject}-${v.file}`);
      writeFileSync(out, encodeImage(img.kind.name, img.entries, img.extras));
      todo.push({ path: out, name: v.file });
    }
    assert.ok(todo.length >= 40, `${todo.length} images where 3.17 agrees`);
    compare(todo);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const U64_MAX = (1n << 64n) - 1n;
const fown = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };
const skOpts = { so_sndbuf: 212992, so_rcvbuf: 212992, so_snd_tmo_sec: 0n, so_snd_tmo_usec: 0n, so_rcv_tmo_sec: U64_MAX, so_rcv_tmo_usec: 1n };

function regs(): Message {
  const names = ['r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di',
    'orig_ax', 'ip', 'cs', 'flags', 'sp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs'];
  const r: Message = {};
  names.forEach((n, i) => { r[n] = i === 10 ? U64_MAX - 3n : BigInt(i) * 0x1111111111n; });
  r['mode'] = 'NATIVE';
  return r;
}

function msgQueue(msgs: { mtype: bigint; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of msgs) {
    const body = encodeMessage('ipc_msg', { mtype: m.mtype, msize: m.data.length });
    const len = Buffer.alloc(4);
    len.writeUInt32LE(body.length, 0);
    parts.push(len, body, m.data, Buffer.alloc((8 - (m.data.length % 8)) % 8));
  }
  return Buffer.concat(parts);
}

const desc = { key: 0x1234, uid: 0, gid: 0, cuid: 0, cgid: 0, mode: 0o600, id: 7 };

interface HandBuilt {
  name: string;
  kind: string;
  entries: Message[];
  extras?: (Buffer | undefined)[];
  /** crit 3.17's encoder crashes on this kind (base64.decodebytes on str) */
  critEncodeBroken?: true;
}

const HAND_BUILT: HandBuilt[] = [
  {
    name: 'core-1.img', kind: 'CORE', entries: [{
      mtype: 'X86_64',
      thread_info: {
        clear_tid_addr: 0x7f0000001000n, gpregs: regs(),
        fpregs: {
          cwd: 0x37f, swd: 0, twd: 0, fop: 0, rip: 0n, rdp: U64_MAX, mxcsr: 0x1f80, mxcsr_mask: 0xffff,
          st_space: Array.from({ length: 32 }, (_, i) => i * 0x01010101), xmm_space: [0xffffffff, 0, 1],
          xsave: { xstate_bv: 7n, ymmh_space: [1, 2, 3], pkru: [0x55555554] },
        },
        tls: [{ entry_number: 12, base_addr: 0, limit: 0xfffff, seg_32bit: true, contents_h: false, contents_l: false,
          read_exec_only: true, limit_in_pages: true, seg_not_present: true, usable: true }],
      },
      tc: {
        task_state: 6, exit_code: 0, personality: 0, flags: 0x40, blk_sigset: U64_MAX, comm: 'h\u00e9llo "x"\\\u0001',
        timers: {
          real: { isec: 1000n, iusec: 0n, vsec: 999n, vusec: 999999n },
          virt: { isec: 0n, iusec: 0n, vsec: 0n, vusec: 0n }, prof: { isec: 0n, iusec: 0n, vsec: 0n, vusec: 0n },
          posix: [
            { it_id: 0, clock_id: 1, si_signo: 14, it_sigev_notify: 1, sival_ptr: U64_MAX, overrun: 0, isec: 0n, insec: 0n, vsec: 500n, vnsec: 1n, notify_thread_id: -1 },
            { it_id: 1, clock_id: 0, si_signo: 10, it_sigev_notify: 4, sival_ptr: 0n, overrun: 3, isec: 1n, insec: 2n, vsec: 3n, vnsec: 4n },
          ],
        },
        rlimits: { rlimits: [{ cur: U64_MAX, max: U64_MAX }, { cur: 8388608n, max: U64_MAX }, { cur: 0n, max: 0n }] },
        signals_s: { signals: [{ siginfo: Buffer.alloc(128, 7) }] },
        loginuid: 0xffffffff, oom_score_adj: -1000,
        sigactions: [
          { sigaction: 0n, flags: 0x4000000n, restorer: 0x7f00n, mask: 0n },
          { sigaction: 0x55550000n, flags: 0x14000000n, restorer: 0x7f00n, mask: 1n << 63n, compat_sigaction: false },
        ],
        child_subreaper: true,
      },
      ids: { vm_id: 1, files_id: 1, fs_id: 1, sighand_id: 1, time_ns_id: 9 },
      thread_core: {
        futex_rla: 0n, futex_rla_len: 24, sched_nice: -20, sched_policy: 0, blk_sigset: 0n,
        sas: { ss_sp: 0n, ss_size: 0n, ss_flags: 2 }, pdeath_sig: 9,
        creds: { uid: 1000, gid: 1000, euid: 0, egid: 0, suid: 0, sgid: 0, fsuid: 0, fsgid: 0,
          cap_inh: [0, 0], cap_prm: [0xffffffff, 0x1ff], cap_eff: [0xffffffff, 0x1ff], cap_bnd: [0xffffffff, 0x1ff],
          secbits: 0, groups: [0, 4, 24, 27, 1000] },
        seccomp_mode: 'filter', seccomp_filter: 3, comm: 'thr',
      },
    }],
  },
  {
    name: 'mm-1.img', kind: 'MM', entries: [{
      mm_start_code: 0x400000n, mm_end_code: 0x401000n, mm_start_data: 0n, mm_end_data: 0n, mm_start_stack: 0x7ffc0000n,
      mm_start_brk: 0n, mm_brk: 0n, mm_arg_start: 0n, mm_arg_end: 0n, mm_env_start: 0n, mm_env_end: U64_MAX,
      exe_file_id: 3, mm_saved_auxv: [33n, 0x7ffc1000n, 16n, U64_MAX, 0n], dumpable: 1, thp_disabled: false,
      vmas: [
        { start: 0xffffffffff600000n, end: 0xffffffffff601000n, pgoff: 0n, shmid: 0n, prot: 4, flags: 0x22, status: 0x4, fd: -1n },
        { start: 0x1000n, end: 0x2000n, pgoff: 12n, shmid: 7n, prot: 0, flags: 0x1 | 0x100000, status: 0x41 | (1 << 20), fd: 5n, madv: 0x10000n, fdflags: 0o2 },
      ],
      aios: [{ id: 1n, nr_req: 128, ring_len: 4096 }],
    }],
  },
  {
    name: 'files.img', kind: 'FILES', entries: [
      { type: 'UNIXSK', id: 1, usk: { id: 1, ino: 42, type: 5, state: 1, flags: 0, uflags: 0x2, backlog: 0, peer: 0, fown, opts: skOpts,
        name: Buffer.concat([Buffer.from('/tmp/a=b \tc\u00ff'), Buffer.from([0, 0xff, 0x7f, 0x2e]), Buffer.alloc(100, 0x61), Buffer.from('end ')]),
        shutdown: 'BOTH' } },
      { type: 'INETSK', id: 2, isk: { id: 2, ino: 43, family: 10, type: 1, proto: 6, state: 10, src_port: 8080, dst_port: 0, flags: 0x802,
        backlog: 128, src_addr: [0, 0, 0, 0x01000000], dst_addr: [0x000080fe, 0, 0xff020000, 0x01000000], fown, opts: skOpts, v6only: true } },
      { type: 'INETSK', id: 3, isk: { id: 3, ino: 44, family: 99, type: 77, proto: 255, state: 99, src_port: 0, dst_port: 0, flags: 0,
        backlog: 0, src_addr: [0x0100a8c0], dst_addr: [0xffffffff], fown, opts: skOpts } },
      { type: 'EVENTPOLL', id: 4, epfd: { id: 4, flags: 0o2000002, fown,
        tfd: [{ id: 5, tfd: 11, events: 0x80000019, data: U64_MAX }, { id: 6, tfd: 12, events: 1, data: 0n, dev: 0x800001, inode: 99n, pos: 3n }] } },
      { type: 'INOTIFY', id: 7, ify: { id: 7, flags: 0o4000, fown,
        wd: [{ id: 7, i_ino: 1234n, mask: 0x302, ignored_mask: 0, s_dev: (254 << 20) | 3, wd: 1,
          f_handle: { bytes: 8, type: 1, handle: [U64_MAX, 0n, 1n << 63n], path: '/tmp', mnt_id: 21 } }] } },
      { type: 'REG', id: 8, reg: { id: 8, flags: 0o102 | 0o2000000 | 0o4000000000, pos: U64_MAX >> 1n, fown: { ...fown, uid: 1, pid: 77 },
        name: '/tmp/\u2603 file', mnt_id: -1, size: 0n, mode: 0o100644, build_id: [1, 2, 3] } },
    ],
  },
  {
    name: 'pipes-data.img', kind: 'PIPES_DATA',
    entries: [{ pipe_id: 1, bytes: 200, size: 65536 }, { pipe_id: 2, bytes: 0 }, { pipe_id: 3, bytes: 57 }],
    extras: [Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff)), undefined, Buffer.alloc(57, 0x41)],
  },
  {
    name: 'sk-queues.img', kind: 'SK_QUEUES',
    entries: [{ id_for: 9, length: 3, scm: [{ type: 1, rights: [4, 5, 6] }, { type: 2 }] }],
    extras: [Buffer.from('xyz')],
  },
  {
    name: 'irmap-cache', kind: 'IRMAP_CACHE',
    entries: [{ dev: 0x00000803, inode: 7n, path: '/' }, { dev: 0xfff12345, inode: U64_MAX, path: 'x' }],
  },
  {
    name: 'stats-dump', kind: 'STATS',
    entries: [{ dump: { freezing_time: 1, frozen_time: 2, memdump_time: 3, memwrite_time: 4, pages_scanned: U64_MAX,
      pages_skipped_parent: 0n, pages_written: 5n, pages_lazy: 0n, irmap_resolve: 0 } }],
  },
  {
    name: 'tcp-stream-1a.img', kind: 'TCP_STREAM',
    entries: [{ inq_len: 5, inq_seq: 1, outq_len: 3, outq_seq: 0xffffffff, opt_mask: 7, snd_wscale: 7, mss_clamp: 65483, cork: false }],
    extras: [Buffer.from('helloabc')],
  },
  {
    name: 'ipcns-sem-1.img', kind: 'IPCNS_SEM',
    entries: [{ desc, nsems: 3 }, { desc: { ...desc, id: 8 }, nsems: 4 }],
    extras: [Buffer.from([1, 0, 2, 0, 0xff, 0xff, 0, 0]), Buffer.from([9, 0, 8, 0, 7, 0, 6, 0])],
  },
  {
    name: 'ipcns-shm-1.img', kind: 'IPCNS_SHM', critEncodeBroken: true,
    entries: [{ desc, size: 5n }], extras: [Buffer.from('abcde\0\0\0')],
  },
  {
    name: 'ipcns-msg-1.img', kind: 'IPCNS_MSG',
    entries: [{ desc, qbytes: 16384, qnum: 2 }, { desc, qbytes: 0, qnum: 0 }],
    extras: [msgQueue([{ mtype: 1n, data: Buffer.from('abc') }, { mtype: (1n << 63n) + 5n, data: Buffer.alloc(8, 0x31) }]), undefined],
  },
  {
    name: 'ghost-file-1.img', kind: 'GHOST_FILE',
    entries: [{ uid: 0, gid: 0, mode: 0o100600, dev: 0x800001, ino: 12n, size: 6n }], extras: [Buffer.from('ghost\n')],
  },
  {
    name: 'ghost-file-2.img', kind: 'GHOST_FILE',
    entries: [{ uid: 0, gid: 0, mode: 0o100600, chunks: true, size: 8192n }, { len: 3n, off: 0n }, { len: 2n, off: 4096n }],
    extras: [undefined, Buffer.from('abc'), Buffer.from('xy')],
  },
  {
    name: 'seccomp.img', kind: 'SECCOMP',
    entries: [{ seccomp_filters: [{ filter: Buffer.alloc(0) }, { filter: Buffer.alloc(300, 0xfe), prev: 1, flags: 0 }] }],
  },
];

test('crit 3.17 reads hand-built images (u64 extremes, negatives, nesting, payloads) like crit-ts', { skip: noCrit }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'crit-oracle-'));
  try {
    const todo: { path: string; name: string; encodeBroken: boolean }[] = [];
    for (const h of HAND_BUILT) {
      const path = join(dir, h.name);
      const bytes = encodeImage(h.kind, h.entries, h.extras);
      writeFileSync(path, bytes);
      todo.push({ path, name: h.name, encodeBroken: h.critEncodeBroken === true });
      // and our own decoder gives back what we encoded
      const back = decodeImage(bytes, h.name);
      assert.equal(back.kind.name, h.kind);
      assert.ok(encodeImage(h.kind, back.entries, back.extras).equals(bytes), `${h.name} re-encodes identically`);
      for (const pretty of [false, true]) {
        const text = imageBytesToJsonText(bytes, h.name, { pretty });
        assert.ok(jsonTextToImageBytes(text, h.name).equals(bytes), `${h.name} JSON (pretty=${pretty}) encodes back to the same bytes`);
      }
    }
    compare(todo);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('/usr/bin/crit itself (the CLI) decodes our encoded core image like crit-ts', { skip: noCrit }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'crit-oracle-'));
  try {
    const h = HAND_BUILT[0];
    assert.ok(h);
    const path = join(dir, h.name);
    writeFileSync(path, encodeImage(h.kind, h.entries, h.extras));
    const r = spawnSync(CRIT, ['show', path], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${imageBytesToJsonText(readFileSync(path), h.name, { pretty: true })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
