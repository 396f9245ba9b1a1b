/**
 * Task and thread state (CRIU images/core.proto, core-x86.proto, rseq.proto): the CORE image.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('seccomp_mode', { disabled: 0, strict: 1, filter: 2 });
defineMessage('task_core_entry', [
  f(1, 'task_state', 'required', 'uint32', { opts: { dict: 'gen' } }),
  f(2, 'exit_code', 'required', 'uint32'),
  f(3, 'personality', 'required', 'uint32'),
  f(4, 'flags', 'required', 'uint32'),
  f(5, 'blk_sigset', 'required', 'uint64', { opts: { hex: true } }),
  f(6, 'comm', 'required', 'string'),
  f(7, 'timers', 'optional', 'message', { ref: 'task_timers_entry' }),
  f(8, 'rlimits', 'optional', 'message', { ref: 'task_rlimits_entry' }),
  f(9, 'cg_set', 'optional', 'uint32'),
  f(10, 'signals_s', 'optional', 'message', { ref: 'signal_queue_entry' }),
  f(11, 'old_seccomp_mode', 'optional', 'enum', { ref: 'seccomp_mode' }),
  f(12, 'old_seccomp_filter', 'optional', 'uint32'),
  f(13, 'loginuid', 'optional', 'uint32'),
  f(14, 'oom_score_adj', 'optional', 'int32'),
  f(15, 'sigactions', 'repeated', 'message', { ref: 'sa_entry' }),
  f(18, 'child_subreaper', 'optional', 'bool'),
  f(20, 'blk_sigset_extended', 'optional', 'uint64', { opts: { hex: true } }),
  f(21, 'stop_signo', 'optional', 'uint32'),
  f(22, 'membarrier_registration_mask', 'optional', 'uint32', { opts: { hex: true } }),
  // criu-ts's own field, not in CRIU: XSAVE features the process asked permission for with
  // arch_prctl(ARCH_REQ_XCOMP_PERM) (AMX tile data), written only when it did. CRIU skips it.
  f(1000, 'xcomp_perm', 'optional', 'uint64', { opts: { hex: true } }),
]);
defineMessage('thread_sas_entry', [
  f(1, 'ss_sp', 'required', 'uint64'),
  f(2, 'ss_size', 'required', 'uint64'),
  f(3, 'ss_flags', 'required', 'uint32'),
]);
defineMessage('thread_core_entry', [
  f(1, 'futex_rla', 'required', 'uint64'),
  f(2, 'futex_rla_len', 'required', 'uint32'),
  f(3, 'sched_nice', 'optional', 'sint32'),
  f(4, 'sched_policy', 'optional', 'uint32'),
  f(5, 'sched_prio', 'optional', 'uint32'),
  f(6, 'blk_sigset', 'optional', 'uint64'),
  f(7, 'sas', 'optional', 'message', { ref: 'thread_sas_entry' }),
  f(8, 'pdeath_sig', 'optional', 'uint32'),
  f(9, 'signals_p', 'optional', 'message', { ref: 'signal_queue_entry' }),
  f(10, 'creds', 'optional', 'message', { ref: 'creds_entry' }),
  f(11, 'seccomp_mode', 'optional', 'enum', { ref: 'seccomp_mode' }),
  f(12, 'seccomp_filter', 'optional', 'uint32'),
  f(13, 'comm', 'optional', 'string'),
  f(14, 'blk_sigset_extended', 'optional', 'uint64'),
  f(15, 'rseq_entry', 'optional', 'message', { ref: 'rseq_entry' }),
  f(16, 'cg_set', 'optional', 'uint32'),
  // criu-ts's own field, not in CRIU (which does not save timer slack): written only when the
  // thread's slack is not the kernel's default (50 us). CRIU and crit skip it as an unknown field.
  f(1000, 'timer_slack_ns', 'optional', 'uint64'),
]);
defineMessage('task_rlimits_entry', [
  f(1, 'rlimits', 'repeated', 'message', { ref: 'rlimit_entry' }),
]);
defineEnum('core_entry.march', { UNKNOWN: 0, X86_64: 1, ARM: 2, AARCH64: 3, PPC64: 4, S390: 5, MIPS: 6, LOONGARCH64: 7, RISCV64: 8 });
defineMessage('core_entry', [
  f(1, 'mtype', 'required', 'enum', { ref: 'core_entry.march' }),
  f(2, 'thread_info', 'optional', 'message', { ref: 'thread_info_x86' }),
  f(3, 'tc', 'optional', 'message', { ref: 'task_core_entry' }),
  f(4, 'ids', 'optional', 'message', { ref: 'task_kobj_ids_entry' }),
  f(5, 'thread_core', 'optional', 'message', { ref: 'thread_core_entry' }),
  f(6, 'ti_arm', 'optional', 'message', { ref: 'thread_info_arm' }),
  f(8, 'ti_aarch64', 'optional', 'message', { ref: 'thread_info_aarch64' }),
  f(9, 'ti_ppc64', 'optional', 'message', { ref: 'thread_info_ppc64' }),
  f(10, 'ti_s390', 'optional', 'message', { ref: 'thread_info_s390' }),
  f(11, 'ti_mips', 'optional', 'message', { ref: 'thread_info_mips' }),
  f(12, 'ti_loongarch64', 'optional', 'message', { ref: 'thread_info_loongarch64' }),
  f(13, 'ti_riscv64', 'optional', 'message', { ref: 'thread_info_riscv64' }),
]);
defineEnum('user_x86_regs_mode', { NATIVE: 1, COMPAT: 2 });
defineMessage('user_x86_regs_entry', [
  f(1, 'r15', 'required', 'uint64'),
  f(2, 'r14', 'required', 'uint64'),
  f(3, 'r13', 'required', 'uint64'),
  f(4, 'r12', 'required', 'uint64'),
  f(5, 'bp', 'required', 'uint64'),
  f(6, 'bx', 'required', 'uint64'),
  f(7, 'r11', 'required', 'uint64'),
  f(8, 'r10', 'required', 'uint64'),
  f(9, 'r9', 'required', 'uint64'),
  f(10, 'r8', 'required', 'uint64'),
  f(11, 'ax', 'required', 'uint64'),
  f(12, 'cx', 'required', 'uint64'),
  f(13, 'dx', 'required', 'uint64'),
  f(14, 'si', 'required', 'uint64'),
  f(15, 'di', 'required', 'uint64'),
  f(16, 'orig_ax', 'required', 'uint64'),
  f(17, 'ip', 'required', 'uint64'),
  f(18, 'cs', 'required', 'uint64'),
  f(19, 'flags', 'required', 'uint64'),
  f(20, 'sp', 'required', 'uint64'),
  f(21, 'ss', 'required', 'uint64'),
  f(22, 'fs_base', 'required', 'uint64'),
  f(23, 'gs_base', 'required', 'uint64'),
  f(24, 'ds', 'required', 'uint64'),
  f(25, 'es', 'required', 'uint64'),
  f(26, 'fs', 'required', 'uint64'),
  f(27, 'gs', 'required', 'uint64'),
  f(28, 'mode', 'optional', 'enum', { ref: 'user_x86_regs_mode' }),
]);
defineMessage('user_x86_cet_entry', [
  f(1, 'cet', 'required', 'uint64'),
  f(2, 'ssp', 'required', 'uint64'),
]);
defineMessage('user_x86_xsave_entry', [
  f(1, 'xstate_bv', 'required', 'uint64'),
  f(2, 'ymmh_space', 'repeated', 'uint32'),
  f(3, 'bndreg_state', 'repeated', 'uint64'),
  f(4, 'bndcsr_state', 'repeated', 'uint64'),
  f(5, 'opmask_reg', 'repeated', 'uint64'),
  f(6, 'zmm_upper', 'repeated', 'uint64'),
  f(7, 'hi16_zmm', 'repeated', 'uint64'),
  f(8, 'pkru', 'repeated', 'uint32'),
  // CET state (4.x): printed in hex by crit
  f(9, 'cet', 'optional', 'message', { ref: 'user_x86_cet_entry', opts: { hex: true } }),
]);
defineMessage('user_x86_fpregs_entry', [
  f(1, 'cwd', 'required', 'uint32'),
  f(2, 'swd', 'required', 'uint32'),
  f(3, 'twd', 'required', 'uint32'),
  f(4, 'fop', 'required', 'uint32'),
  f(5, 'rip', 'required', 'uint64'),
  f(6, 'rdp', 'required', 'uint64'),
  f(7, 'mxcsr', 'required', 'uint32'),
  f(8, 'mxcsr_mask', 'required', 'uint32'),
  f(9, 'st_space', 'repeated', 'uint32'),
  f(10, 'xmm_space', 'repeated', 'uint32'),
  f(11, 'padding', 'repeated', 'uint32'),
  f(13, 'xsave', 'optional', 'message', { ref: 'user_x86_xsave_entry' }),
]);
defineMessage('user_desc_t', [
  f(1, 'entry_number', 'required', 'uint32'),
  f(2, 'base_addr', 'required', 'uint32'),
  f(3, 'limit', 'required', 'uint32'),
  f(4, 'seg_32bit', 'required', 'bool'),
  f(5, 'contents_h', 'required', 'bool'),
  f(6, 'contents_l', 'required', 'bool'),
  f(7, 'read_exec_only', 'required', 'bool'),
  f(8, 'limit_in_pages', 'required', 'bool'),
  f(9, 'seg_not_present', 'required', 'bool'),
  f(10, 'usable', 'required', 'bool'),
]);
defineMessage('thread_info_x86', [
  f(1, 'clear_tid_addr', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'gpregs', 'required', 'message', { ref: 'user_x86_regs_entry', opts: { hex: true } }),
  f(3, 'fpregs', 'required', 'message', { ref: 'user_x86_fpregs_entry' }),
  f(4, 'tls', 'repeated', 'message', { ref: 'user_desc_t' }),
]);
defineMessage('rseq_entry', [
  f(1, 'rseq_abi_pointer', 'required', 'uint64'),
  f(2, 'rseq_abi_size', 'required', 'uint32'),
  f(3, 'signature', 'required', 'uint32'),
  f(4, 'rseq_cs_pointer', 'optional', 'uint64'),
]);

// Other architectures' thread state (core-arm/aarch64/ppc64/s390/mips.proto): decoded so that
// images from those machines can be inspected; restore only handles x86_64.
defineMessage('user_arm_regs_entry', [
  f(1, 'r0', 'required', 'uint32'),
  f(2, 'r1', 'required', 'uint32'),
  f(3, 'r2', 'required', 'uint32'),
  f(4, 'r3', 'required', 'uint32'),
  f(5, 'r4', 'required', 'uint32'),
  f(6, 'r5', 'required', 'uint32'),
  f(7, 'r6', 'required', 'uint32'),
  f(8, 'r7', 'required', 'uint32'),
  f(9, 'r8', 'required', 'uint32'),
  f(10, 'r9', 'required', 'uint32'),
  f(11, 'r10', 'required', 'uint32'),
  f(12, 'fp', 'required', 'uint32'),
  f(13, 'ip', 'required', 'uint32'),
  f(14, 'sp', 'required', 'uint32'),
  f(15, 'lr', 'required', 'uint32'),
  f(16, 'pc', 'required', 'uint32'),
  f(17, 'cpsr', 'required', 'uint32'),
  f(18, 'orig_r0', 'required', 'uint32'),
]);
defineMessage('user_arm_vfpstate_entry', [
  f(1, 'vfp_regs', 'repeated', 'uint64'),
  f(2, 'fpscr', 'required', 'uint32'),
  f(3, 'fpexc', 'required', 'uint32'),
  f(4, 'fpinst', 'required', 'uint32'),
  f(5, 'fpinst2', 'required', 'uint32'),
]);
defineMessage('thread_info_arm', [
  f(1, 'clear_tid_addr', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'tls', 'required', 'uint32'),
  f(3, 'gpregs', 'required', 'message', { ref: 'user_arm_regs_entry', opts: { hex: true } }),
  f(4, 'fpstate', 'required', 'message', { ref: 'user_arm_vfpstate_entry' }),
]);
defineMessage('user_aarch64_regs_entry', [
  f(1, 'regs', 'repeated', 'uint64'),
  f(2, 'sp', 'required', 'uint64'),
  f(3, 'pc', 'required', 'uint64'),
  f(4, 'pstate', 'required', 'uint64'),
]);
defineMessage('user_aarch64_fpsimd_context_entry', [
  f(1, 'vregs', 'repeated', 'uint64'),
  f(2, 'fpsr', 'required', 'uint32'),
  f(3, 'fpcr', 'required', 'uint32'),
]);
defineMessage('thread_info_aarch64', [
  f(1, 'clear_tid_addr', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'tls', 'required', 'uint64'),
  f(3, 'gpregs', 'required', 'message', { ref: 'user_aarch64_regs_entry', opts: { hex: true } }),
  f(4, 'fpsimd', 'required', 'message', { ref: 'user_aarch64_fpsimd_context_entry' }),
  f(5, 'pac_keys', 'optional', 'message', { ref: 'pac_keys' }),
]);
defineMessage('user_ppc64_regs_entry', [
  f(1, 'gpr', 'repeated', 'uint64'),
  f(2, 'nip', 'required', 'uint64'),
  f(3, 'msr', 'required', 'uint64'),
  f(4, 'orig_gpr3', 'required', 'uint64'),
  f(5, 'ctr', 'required', 'uint64'),
  f(6, 'link', 'required', 'uint64'),
  f(7, 'xer', 'required', 'uint64'),
  f(8, 'ccr', 'required', 'uint64'),
  f(9, 'trap', 'required', 'uint64'),
  f(10, 'texasr', 'optional', 'uint64'),
  f(11, 'tfhar', 'optional', 'uint64'),
  f(12, 'tfiar', 'optional', 'uint64'),
]);
defineMessage('user_ppc64_fpstate_entry', [
  f(1, 'fpregs', 'repeated', 'uint64'),
]);
defineMessage('user_ppc64_vrstate_entry', [
  f(1, 'vrregs', 'repeated', 'uint64'),
  f(2, 'vrsave', 'required', 'uint32'),
]);
defineMessage('user_ppc64_vsxstate_entry', [
  f(1, 'vsxregs', 'repeated', 'uint64'),
]);
defineMessage('user_ppc64_tm_regs_entry', [
  f(1, 'gpregs', 'required', 'message', { ref: 'user_ppc64_regs_entry' }),
  f(2, 'fpstate', 'optional', 'message', { ref: 'user_ppc64_fpstate_entry' }),
  f(3, 'vrstate', 'optional', 'message', { ref: 'user_ppc64_vrstate_entry' }),
  f(4, 'vsxstate', 'optional', 'message', { ref: 'user_ppc64_vsxstate_entry' }),
]);
defineMessage('thread_info_ppc64', [
  f(1, 'clear_tid_addr', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'gpregs', 'required', 'message', { ref: 'user_ppc64_regs_entry', opts: { hex: true } }),
  f(3, 'fpstate', 'optional', 'message', { ref: 'user_ppc64_fpstate_entry' }),
  f(4, 'vrstate', 'optional', 'message', { ref: 'user_ppc64_vrstate_entry' }),
  f(5, 'vsxstate', 'optional', 'message', { ref: 'user_ppc64_vsxstate_entry' }),
  f(6, 'tmstate', 'optional', 'message', { ref: 'user_ppc64_tm_regs_entry' }),
]);
defineMessage('user_s390_regs_entry', [
  f(1, 'psw_mask', 'required', 'uint64'),
  f(2, 'psw_addr', 'required', 'uint64'),
  f(3, 'gprs', 'repeated', 'uint64'),
  f(4, 'acrs', 'repeated', 'uint32'),
  f(5, 'orig_gpr2', 'required', 'uint64'),
  f(6, 'system_call', 'required', 'uint32'),
]);
defineMessage('user_s390_vxrs_low_entry', [
  f(1, 'regs', 'repeated', 'uint64'),
]);
defineMessage('user_s390_vxrs_high_entry', [
  f(1, 'regs', 'repeated', 'uint64'),
]);
defineMessage('user_s390_fpregs_entry', [
  f(1, 'fpc', 'required', 'uint32'),
  f(2, 'fprs', 'repeated', 'uint64'),
]);
defineMessage('user_s390_gs_cb_entry', [
  f(1, 'regs', 'repeated', 'uint64'),
]);
defineMessage('user_s390_ri_entry', [
  f(1, 'ri_on', 'required', 'uint32'),
  f(2, 'regs', 'repeated', 'uint64'),
]);
defineMessage('thread_info_s390', [
  f(1, 'clear_tid_addr', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'gpregs', 'required', 'message', { ref: 'user_s390_regs_entry', opts: { hex: true } }),
  f(3, 'fpregs', 'required', 'message', { ref: 'user_s390_fpregs_entry', opts: { hex: true } }),
  f(4, 'vxrs_low', 'optional', 'message', { ref: 'user_s390_vxrs_low_entry', opts: { hex: true } }),
  f(5, 'vxrs_high', 'optional', 'message', { ref: 'user_s390_vxrs_high_entry', opts: { hex: true } }),
  f(6, 'gs_cb', 'optional', 'message', { ref: 'user_s390_gs_cb_entry', opts: { hex: true } }),
  f(7, 'gs_bc', 'optional', 'message', { ref: 'user_s390_gs_cb_entry', opts: { hex: true } }),
  f(8, 'ri_cb', 'optional', 'message', { ref: 'user_s390_ri_entry', opts: { hex: true } }),
]);
defineMessage('user_mips_regs_entry', [
  f(1, 'r0', 'required', 'uint64'),
  f(2, 'r1', 'required', 'uint64'),
  f(3, 'r2', 'required', 'uint64'),
  f(4, 'r3', 'required', 'uint64'),
  f(5, 'r4', 'required', 'uint64'),
  f(6, 'r5', 'required', 'uint64'),
  f(7, 'r6', 'required', 'uint64'),
  f(8, 'r7', 'required', 'uint64'),
  f(9, 'r8', 'required', 'uint64'),
  f(10, 'r9', 'required', 'uint64'),
  f(11, 'r10', 'required', 'uint64'),
  f(12, 'r11', 'required', 'uint64'),
  f(13, 'r12', 'required', 'uint64'),
  f(14, 'r13', 'required', 'uint64'),
  f(15, 'r14', 'required', 'uint64'),
  f(16, 'r15', 'required', 'uint64'),
  f(17, 'r16', 'required', 'uint64'),
  f(18, 'r17', 'required', 'uint64'),
  f(19, 'r18', 'required', 'uint64'),
  f(20, 'r19', 'required', 'uint64'),
  f(21, 'r20', 'required', 'uint64'),
  f(22, 'r21', 'required', 'uint64'),
  f(23, 'r22', 'required', 'uint64'),
  f(24, 'r23', 'required', 'uint64'),
  f(25, 'r24', 'required', 'uint64'),
  f(26, 'r25', 'required', 'uint64'),
  f(27, 'r26', 'required', 'uint64'),
  f(28, 'r27', 'required', 'uint64'),
  f(29, 'r28', 'required', 'uint64'),
  f(30, 'r29', 'required', 'uint64'),
  f(31, 'r30', 'required', 'uint64'),
  f(32, 'r31', 'required', 'uint64'),
  f(33, 'lo', 'required', 'uint64'),
  f(34, 'hi', 'required', 'uint64'),
  f(35, 'cp0_epc', 'required', 'uint64'),
  f(36, 'cp0_badvaddr', 'required', 'uint64'),
  f(37, 'cp0_status', 'required', 'uint64'),
  f(38, 'cp0_cause', 'required', 'uint64'),
]);
defineMessage('user_mips_fpregs_entry', [
  f(1, 'r0', 'required', 'uint64'),
  f(2, 'r1', 'required', 'uint64'),
  f(3, 'r2', 'required', 'uint64'),
  f(4, 'r3', 'required', 'uint64'),
  f(5, 'r4', 'required', 'uint64'),
  f(6, 'r5', 'required', 'uint64'),
  f(7, 'r6', 'required', 'uint64'),
  f(8, 'r7', 'required', 'uint64'),
  f(9, 'r8', 'required', 'uint64'),
  f(10, 'r9', 'required', 'uint64'),
  f(11, 'r10', 'required', 'uint64'),
  f(12, 'r11', 'required', 'uint64'),
  f(13, 'r12', 'required', 'uint64'),
  f(14, 'r13', 'required', 'uint64'),
  f(15, 'r14', 'required', 'uint64'),
  f(16, 'r15', 'required', 'uint64'),
  f(17, 'r16', 'required', 'uint64'),
  f(18, 'r17', 'required', 'uint64'),
  f(19, 'r18', 'required', 'uint64'),
  f(20, 'r19', 'required', 'uint64'),
  f(21, 'r20', 'required', 'uint64'),
  f(22, 'r21', 'required', 'uint64'),
  f(23, 'r22', 'required', 'uint64'),
  f(24, 'r23', 'required', 'uint64'),
  f(25, 'r24', 'required', 'uint64'),
  f(26, 'r25', 'required', 'uint64'),
  f(27, 'r26', 'required', 'uint64'),
  f(28, 'r27', 'required', 'uint64'),
  f(29, 'r28', 'required', 'uint64'),
  f(30, 'r29', 'required', 'uint64'),
  f(31, 'r30', 'required', 'uint64'),
  f(32, 'r31', 'required', 'uint64'),
  f(33, 'lo', 'required', 'uint64'),
  f(34, 'hi', 'required', 'uint64'),
  f(35, 'fpu_fcr31', 'required', 'uint32'),
  f(36, 'fpu_id', 'required', 'uint32'),
]);
defineMessage('thread_info_mips', [
  f(1, 'clear_tid_addr', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'tls', 'required', 'uint64'),
  f(3, 'gpregs', 'required', 'message', { ref: 'user_mips_regs_entry', opts: { hex: true } }),
  f(4, 'fpregs', 'required', 'message', { ref: 'user_mips_fpregs_entry', opts: { hex: true } }),
]);
