/** x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
export const NR = {
  read: 0, write: 1, open: 2, close: 3, fstat: 5, lseek: 8, mmap: 9, mprotect: 10, munmap: 11, brk: 12,
  rt_sigaction: 13, rt_sigprocmask: 14, rt_sigreturn: 15, ioctl: 16, pread64: 17, pwrite64: 18,
  readv: 19, writev: 20, pipe: 22, mremap: 25, msync: 26, mincore: 27, madvise: 28, dup: 32, dup2: 33,
  nanosleep: 35, getitimer: 36, setitimer: 38, getpid: 39, socket: 41, connect: 42, accept: 43,
  sendto: 44, recvfrom: 45, sendmsg: 46, recvmsg: 47, shutdown: 48, bind: 49, listen: 50,
  getsockname: 51, getpeername: 52, socketpair: 53, setsockopt: 54, getsockopt: 55, clone: 56,
  fork: 57, execve: 59, exit: 60, wait4: 61, kill: 62, uname: 63, fcntl: 72, flock: 73, fsync: 74,
  ftruncate: 77, getcwd: 79, chdir: 80, fchdir: 81, rename: 82, mkdir: 83, unlink: 87, readlink: 89,
  fchmod: 91, fchown: 93, umask: 95, getrlimit: 97, ptrace: 101, getuid: 102, getgid: 104,
  setuid: 105, setgid: 106, geteuid: 107, getegid: 108, setpgid: 109, getppid: 110, getpgrp: 111,
  setsid: 112, setreuid: 113, setregid: 114, getgroups: 115, setgroups: 116, setresuid: 117,
  getresuid: 118, setresgid: 119, getresgid: 120, getpgid: 121, setfsuid: 122, setfsgid: 123,
  getsid: 124, capget: 125, capset: 126, rt_sigpending: 127, rt_sigtimedwait: 128,
  rt_sigqueueinfo: 129, rt_sigsuspend: 130, sigaltstack: 131, personality: 135, getpriority: 140,
  setpriority: 141, mlock: 149, sched_getparam: 143, sched_setscheduler: 144, sched_getscheduler: 145, prctl: 157, arch_prctl: 158,
  setrlimit: 160, chroot: 161, gettid: 186, tkill: 200, futex: 202, sched_setaffinity: 203,
  sched_getaffinity: 204, io_setup: 206, io_destroy: 207, io_submit: 209, set_tid_address: 218, restart_syscall: 219, timer_create: 222,
  timer_settime: 223, timer_gettime: 224, timer_getoverrun: 225, timer_delete: 226,
  clock_gettime: 228, clock_nanosleep: 230, exit_group: 231, epoll_wait: 232, epoll_ctl: 233,
  tgkill: 234, waitid: 247, ioprio_set: 251, ioprio_get: 252, inotify_add_watch: 254, openat: 257,
  mkdirat: 258, mknodat: 259, unlinkat: 263, linkat: 265, readlinkat: 267, fchownat: 260, set_robust_list: 273, get_robust_list: 274, splice: 275, tee: 276, utimensat: 280,
  timerfd_create: 283, fallocate: 285, timerfd_settime: 286, timerfd_gettime: 287, signalfd4: 289,
  eventfd2: 290, epoll_create1: 291, dup3: 292, pipe2: 293, inotify_init1: 294, preadv: 295,
  pwritev: 296, rt_tgsigqueueinfo: 297, fanotify_init: 300, fanotify_mark: 301, prlimit64: 302,
  name_to_handle_at: 303, open_by_handle_at: 304, setns: 308, getcpu: 309, process_vm_readv: 310,
  process_vm_writev: 311, kcmp: 312, seccomp: 317, getrandom: 318, memfd_create: 319,
  userfaultfd: 323, membarrier: 324, copy_file_range: 326, preadv2: 327, pwritev2: 328, statx: 332,
  rseq: 334, pidfd_send_signal: 424, io_uring_setup: 425, io_uring_enter: 426, pidfd_open: 434, clone3: 435, close_range: 436,
  pidfd_getfd: 438, process_mrelease: 448,
  // SysV IPC and namespaces (kinds/ns)
  shmget: 29, shmat: 30, shmctl: 31, semget: 64, semctl: 66, shmdt: 67, msgget: 68, msgctl: 71,
  sethostname: 170, setdomainname: 171, unshare: 272,
  // POSIX message queues (kinds/files/mqueue.ts)
  mq_open: 240, mq_unlink: 241, mq_timedsend: 242, mq_timedreceive: 243, mq_getsetattr: 245,
  // the new mount API (cgroup hierarchies as detached mounts, kinds/cgroup)
  fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433,
  // mount namespaces (kinds/ns/mnt): the tree built inside the restored root task
  mount: 165, umount2: 166, pivot_root: 155, open_tree: 428, move_mount: 429, mount_setattr: 442,
  // calls a thread may be blocked in at dump (their restart codes: restore/restart.ts)
  poll: 7, select: 23, pause: 34, vfork: 58, msgsnd: 69, msgrcv: 70, pselect6: 270, ppoll: 271,
} as const;

export type SyscallName = keyof typeof NR;
