#!/usr/bin/python3
# The oracle client for test/rpc: Debian's pycriu (CRIU's own Python
# library) driving `criu-ts swrk` through use_binary(), or a raw
# SOCK_SEQPACKET client for `criu-ts service`. Prints one JSON object per
# line on stdout; the tests read them.
import argparse
import ctypes
import json
import os
import socket
import sys

import pycriu

rpc = pycriu.rpc
PR_SET_CHILD_SUBREAPER = 36


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def resp_dict(resp):
    d = {"type": rpc.criu_req_type.Name(resp.type) if resp.type in rpc.criu_req_type.values() else resp.type,
         "success": resp.success}
    if resp.HasField("cr_errno"):
        d["cr_errno"] = resp.cr_errno
    if resp.HasField("cr_errmsg"):
        d["cr_errmsg"] = resp.cr_errmsg
    if resp.HasField("restore"):
        d["restore_pid"] = resp.restore.pid
    if resp.HasField("dump"):
        d["restored"] = resp.dump.restored
    if resp.HasField("version"):
        v = resp.version
        d["version"] = {"major": v.major_number, "minor": v.minor_number, "name": v.name, "gitid": v.gitid}
    if resp.HasField("features"):
        f = resp.features
        d["features"] = {"mem_track": f.mem_track, "lazy_pages": f.lazy_pages, "pidfd_store": f.pidfd_store}
    if resp.HasField("status"):
        d["status"] = resp.status
    return d


def ppid_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return int(s[s.rindex(")") + 2:].split()[1])


def opts_from(args, opts):
    if args.dir is not None:
        opts.images_dir_fd = os.open(args.dir, os.O_DIRECTORY)
    else:
        opts.images_dir_fd = -1
    if args.pid is not None:
        opts.pid = args.pid
    if args.leave_running:
        opts.leave_running = True
    if args.log_file is not None:
        opts.log_file = args.log_file
    opts.log_level = 4
    if args.rst_sibling:
        opts.rst_sibling = True
    if args.notify is not None:
        opts.notify_scripts = True
    if args.ps_port is not None:
        opts.ps.address = args.ps_address or "127.0.0.1"
        opts.ps.port = args.ps_port
    if args.unsupported:
        # what criu-ts refuses: a page server socket the client connected, and an LSM profile to put on the tasks
        opts.ps.port = 1
        opts.ps.fd = 0
        opts.lsm_profile = "apparmor:unconfined"


def exchange(sk, req, refuse):
    """Send req; answer NOTIFY responses (refusing the script named `refuse`); return (final resp, scripts seen)."""
    sk.send(req.SerializeToString())
    seen = []
    while True:
        buf = sk.recv(len(sk.recv(1, socket.MSG_TRUNC | socket.MSG_PEEK)))
        resp = rpc.criu_resp()
        resp.ParseFromString(buf)
        if resp.type != rpc.NOTIFY:
            return resp, seen
        name = resp.notify.script
        seen.append({"script": name, "pid": resp.notify.pid if resp.notify.HasField("pid") else None})
        ack = rpc.criu_req()
        ack.type = rpc.NOTIFY
        ack.notify_success = name != refuse
        sk.send(ack.SerializeToString())


def with_notify(args, typ):
    c = pycriu.criu()
    c.use_binary(args.binary)
    req = rpc.criu_req()
    req.type = typ
    opts_from(args, req.opts)
    sk = c._comm.connect(False)
    resp, seen = exchange(sk, req, args.notify)
    c._comm.disconnect()
    d = resp_dict(resp)
    d["notify"] = seen
    return d


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command")
    p.add_argument("--binary")
    p.add_argument("--address")
    p.add_argument("--dir")
    p.add_argument("--pid", type=int)
    p.add_argument("--leave-running", action="store_true")
    p.add_argument("--log-file")
    p.add_argument("--rst-sibling", action="store_true")
    p.add_argument("--subreaper", action="store_true")
    p.add_argument("--wait", action="store_true")
    # notify_scripts on; the value names a script to refuse ("none" refuses nothing)
    p.add_argument("--notify")
    p.add_argument("--unsupported", action="store_true")
    p.add_argument("--dirs", help="comma-separated images dirs for iterative")
    p.add_argument("--types", help="comma-separated request types for raw/service")
    p.add_argument("--ps-address", help="opts.ps.address (page server)")
    p.add_argument("--ps-port", type=int, help="opts.ps.port (page server)")
    args = p.parse_args()

    if args.subreaper:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")

    c = pycriu.criu()
    c.use_binary(args.binary)
    if args.address is not None and args.command in ("dump", "restore"):
        c.use_sk(args.address)  # a criu(-ts) service instead of swrk
    if args.command == "check":
        c.check()
        out({"success": True})
    elif args.command == "dump" and args.notify is None:
        opts_from(args, c.opts)
        try:
            r = c.dump()
            out({"success": True, "restored": r.restored})
        except pycriu.CRIUExceptionExternal as e:
            req = rpc.criu_req()
            req.type = rpc.DUMP
            opts_from(args, req.opts)
            # Same request again for the message: pycriu's exception keeps only the errno.
            out({"success": False, "cr_errno": e.errno, "resp": resp_dict(c._send_req_and_recv_resp(req))})
    elif args.command == "restore" and args.notify is None:
        opts_from(args, c.opts)
        try:
            r = c.restore()
        except pycriu.CRIUExceptionExternal as e:
            req = rpc.criu_req()
            req.type = rpc.RESTORE
            opts_from(args, req.opts)
            out({"success": False, "cr_errno": e.errno, "resp": resp_dict(c._send_req_and_recv_resp(req))})
            return
        # pycriu has waited for the swrk process: the tree has found its new parent.
        out({"success": True, "pid": r.pid, "ppid": ppid_of(r.pid), "me": os.getpid()})
        if args.wait:
            _, status = os.waitpid(r.pid, 0)
            out({"waited": r.pid, "status": status})
    elif args.command == "ps-dump":
        # zdtm's RPC page server: PAGE_SERVER_CHLD (keep_open) into --dir, a
        # DUMP of --pid on another swrk with ps pointing at it, then WAIT_PID
        # for the page server on the first connection.
        pid = args.pid
        args.pid = None
        opts_from(args, c.opts)
        ps = c.page_server_chld()
        out({"ps_pid": ps.pid, "ps_port": ps.port})
        d = pycriu.criu()
        d.use_binary(args.binary)
        args.pid = pid
        args.ps_port = ps.port
        opts_from(args, d.opts)
        r = d.dump()
        out({"success": True, "restored": r.restored})
        out({"status": c.wait_pid(ps.pid)})
    elif args.command == "restore-wait":
        # RESTORE with keep_open, then WAIT_PID on the same connection: the root is the worker's child.
        req = rpc.criu_req()
        req.type = rpc.RESTORE
        req.keep_open = True
        opts_from(args, req.opts)
        r = c._send_req_and_recv_resp(req)
        out(resp_dict(r))
        if r.success:
            out({"status": c.wait_pid(r.restore.pid)})
    elif args.command == "iterative":
        # CRIU's pre_dump_loop: PRE_DUMP into each dir but the last, each on
        # the previous one (parent_img), then DUMP into the last, all on one
        # connection (no keep_open needed after a PRE_DUMP).
        dirs = args.dirs.split(",")
        sk = c._comm.connect(False)
        for i, d in enumerate(dirs):
            req = rpc.criu_req()
            req.type = rpc.DUMP if i == len(dirs) - 1 else rpc.PRE_DUMP
            args.dir = d
            opts_from(args, req.opts)
            if i > 0:
                req.opts.parent_img = "../" + os.path.basename(dirs[i - 1])
            req.opts.track_mem = True
            sk.send(req.SerializeToString())
            resp = rpc.criu_resp()
            resp.ParseFromString(sk.recv(65536))
            out(resp_dict(resp))
            if not resp.success:
                break
        c._comm.disconnect()
    elif args.command in ("dump", "restore"):
        out(with_notify(args, rpc.DUMP if args.command == "dump" else rpc.RESTORE))
    elif args.command == "raw":
        # One swrk per request, like pycriu.
        for t in args.types.split(","):
            req = rpc.criu_req()
            req.type = int(t)
            if req.type == rpc.FEATURE_CHECK:
                req.features.mem_track = True
                req.features.lazy_pages = True
                req.features.pidfd_store = True
            if req.type in (rpc.PRE_DUMP, rpc.SINGLE_PRE_DUMP, rpc.PAGE_SERVER, rpc.CPUINFO_DUMP, rpc.CPUINFO_CHECK):
                opts_from(args, req.opts)
            out(resp_dict(c._send_req_and_recv_resp(req)))
    elif args.command == "service":
        # A raw SEQPACKET client: all requests on one connection, keep_open on all but the last.
        types = [int(t) for t in args.types.split(",")]
        sk = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sk.connect(args.address)
        for i, t in enumerate(types):
            req = rpc.criu_req()
            req.type = t
            req.keep_open = i < len(types) - 1
            sk.send(req.SerializeToString())
            resp = rpc.criu_resp()
            resp.ParseFromString(sk.recv(65536))
            out(resp_dict(resp))
        out({"eof": sk.recv(16) == b""})
        sk.close()
    else:
        raise SystemExit("unknown command " + args.command)


main()
