/** The --help text: CRIU's commands and options, marking what criu-ts does not do yet. */

export const USAGE = `
Usage:
  criu-ts dump|pre-dump -t PID [<options>]
  criu-ts restore [<options>]
  criu-ts check [--feature FEAT]
  criu-ts page-server -D DIR [--address ADDR] [--port PORT] [--prev-images-dir DIR] [--auto-dedup] [-d] [--pidfile FILE] [--status-fd FD]
  criu-ts service [<options>]
  criu-ts dedup
  criu-ts lazy-pages -D DIR [<options>]

Commands:
  dump           checkpoint a process/tree identified by pid
  pre-dump       pre-dump task(s) minimizing their frozen time (memory tracked without soft-dirty)
  restore        restore a process/tree
  check          checks whether the kernel support is up-to-date
  page-server    receive one dump's pages over TCP into DIR (CRIU's protocol)
  service        launch the RPC service (see docs/rpc.md)
  dedup          remove duplicates in memory dump (pages of the parent images the last one holds again)
  lazy-pages     serve the pages of a 'restore --lazy-pages' from DIR (on fault, the rest in the background)
  cpuinfo dump   writes cpu information into image file
  cpuinfo check  validates cpu information read from image file
`;

export const HELP = `${USAGE}
Options may also come from /etc/criu/default.conf, ~/.criu/default.conf,
$CRIU_CONFIG_FILE and --config FILE (one option per line, without dashes).
Most true/false long options can be prefixed with --no- to negate them.

Dump/Restore options:
  -t|--tree PID         checkpoint a process tree identified by PID
  -d|--restore-detached detach after restore
  -S|--restore-sibling  restore root task as sibling (needs -d)
  -s|--leave-stopped    leave tasks in stopped state after checkpoint/restore
  -R|--leave-running    leave tasks in running state after checkpoint
  -D|--images-dir DIR   directory for image files (default: current directory)
     --pidfile FILE     write the restored root task's pid to FILE
  -W|--work-dir DIR     directory for logs and pidfiles (default: images dir)
     --freeze-cgroup P  use the cgroup freezer at P to stop the tree
     --manage-cgroups[=MODE]  restore: none, props, soft (default), full, strict or ignore
     --cgroup-root [CTRL:]/PATH  dump: walk cgroups from PATH; restore: move them there
     --cgroup-yard DIR  cgroup hierarchies mounted in DIR instead of our own mounts
     --cgroup-dump-controller NAME  dump only this hierarchy (repeatable)
     --timeout N        seconds to wait for the tree to stop
  -j|--shell-job        allow dumping and restoring shell jobs
     --ext-unix-sk      allow unix sockets connected outside the tree
  -J|--join-ns NS:FILE|PID  restore into an existing net, uts or ipc namespace
                        (a namespace file such as /run/netns/NAME, or a pid's)
     --empty-ns net     dump the net namespace without its contents; restore it
                        new and empty, for the caller to fill at setup-namespaces
     --veth-pair IN=OUT[@BR]  restore: the veth IN, whose peer was outside, gets
                        its peer OUT made here (attached to bridge BR, and up)
     --external veth[IN]:OUT[@BR]  the same; --external macvlan[IN]:OUTDEV: the
                        macvlan IN is made again on OUTDEV of this namespace
  -r|--root DIR         restore: the "/" of the tree's own mount namespace
  -M|--ext-mount-map K:V  an external mount, also --external mnt[K]:V: dump
                        MOUNTPOINT:KEY, restore KEY:PATH (the path bound there)
     --external mnt[][:FLAGS]  (-M auto) dump: mounts showing a filesystem our
                        namespace mounts too are external, saved with that path;
                        restore: bind them from it again. FLAGS s and m stand for
     --enable-external-sharing  (dump) such a mount may be shared with our mounts
     --enable-external-masters  (dump) such a mount may be a slave of ours
     --tcp-established  checkpoint/restore established TCP connections
  -l|--file-locks       handle file locks
     --ghost-limit SIZE max size of deleted files kept in the image (K/M/G)
     --link-remap       give files deleted but still linked elsewhere a temporary name
     --config FILE      read options from FILE (and skip the default files)
     --no-default-config  do not read the default configuration files
     --action-script FILE run "sh -c FILE" at each action point (repeatable;
                        CRTOOLS_SCRIPT_ACTION, CRTOOLS_IMAGE_DIR, CRTOOLS_INIT_PID)
     --exec-cmd         on restore, run the command given after "--" once the
                        tree runs, and exit with its status
     --auto-dedup       pre-dump/dump with a parent: free the parents' pages this dump holds again
                        (accepted by restore, where it frees nothing)
     --skip-checksums   restore (lazy-pages: serve) even if a file differs from the dump's checksums
     --verify[=warn]    restore: read every task back before it runs and compare it with
                        the images (registers, memory, fds, signals, creds, ...); a
                        difference fails the restore (with =warn: only logged)
     --page-server      dump: send pagemaps and pages to a page server at --address/--port
                        (criu-ts page-server or CRIU's); the other images stay in -D
     --address ADDR     page server address (page-server: where to listen, default 0.0.0.0)
     --port PORT        page server port (page-server: 0 picks one and prints it)
     --status-fd FD     page-server: write a zero byte to FD once listening
     --socket-mode MODE service: socket permissions, octal (default 0600: root only)
     --socket-group G   service: socket group, to share it with a group on purpose

     --cpu-cap[=LIST]   dump: save this CPU with the images; restore and cpuinfo check:
                        check it against this CPU (fpu, ins, cpu, all, none; ^ negates)

Accepted and ignored (with a warning): --evasive-devices, --force-irmap,
  --irmap-scan-path, --weak-sysctls, --file-validation, --ghost-fiemap,
  --skip-file-rwx-check, --allow-uprobes, --cgroup-props, --cgroup-props-file,
  --skip-mnt, --enable-fs, --lsm-profile, --lsm-mount-context, --mntns-compat-mode,
  --unprivileged, --tls-cacert/-cacrl/-cert/-key/-no-cn-verify, -L|--libdir, ...
Not supported yet (refused): --tls, --stream, --remote, --ps-socket, --check-only

Check options:
  Without options, "criu-ts check" checks the kernel features criu-ts needs.
  --extra               also check features needed for specific cases
  --experimental        also check experimental features
  --all                 same as --extra --experimental
  --feature FEAT        check one feature ("--feature list" names them all)

Logging:
  -o|--log-file FILE    log file name (relative to the work dir; "-" is stdout)
  -v[v...]|--verbosity  increase verbosity (can use multiple v)
  -vNUM|--verbosity=NUM set verbosity to NUM:
                          -v0 - no output
                          -v1 - only errors and messages
                          -v2 - also warnings (default level)
                          -v3 - also information messages and timestamps
                          -v4 - lots of debug
  --display-stats       print out dump stats

Memory dumping options:
  --track-mem           turn on memory changes tracker
  --prev-images-dir DIR path to images from previous dump (relative to -D)
  --pre-dump-mode MODE  splice or read

Other options:
  -h|--help             show this text
  -V|--version          show version
`;
