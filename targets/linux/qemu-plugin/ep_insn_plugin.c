/* edgeprune's instruction clock for qemu-user: a QEMU TCG plugin (edgeprune's own code, built
 * against the qemu-plugin.h API header by scripts/bootstrap-qemu-plugin).
 *
 * It counts every guest instruction the emulated process executes. When the guest makes the
 * marker system call (number EP_MARKER_SYSCALL, which Linux does not have, so it just returns
 * -ENOSYS), the plugin stores the count so far as a little-endian u64 at offset 0 of the counter
 * file named by the plugin argument `counter=PATH`. The guest then reads that file, so its
 * `ep_timer_ticks()` is an instruction clock: differences between two reads are the instructions
 * executed between them, identical from one run to the next (see targets/linux/ep_linux_board.c).
 * At exit the total count of the process is stored at offset 8.
 *
 *   qemu-aarch64 -cpu cortex-a53 -plugin libep_insn.so,counter=insn.counter firmware.elf
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qemu-plugin.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define EP_MARKER_SYSCALL 0x4550 /* keep in step with targets/linux/ep_linux_board.c */

/* The guests edgeprune runs are single threaded, so one plain counter is exact. */
static uint64_t ep_instructions;
static int ep_counter_fd = -1;

static void ep_store(uint64_t value, off_t offset) {
  if (pwrite(ep_counter_fd, &value, sizeof value, offset) != (ssize_t)sizeof value)
    perror("ep_insn plugin: writing the counter file");
}

/* Every translated block adds its instruction count each time it runs (an inline add, no call). */
static void ep_on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &ep_instructions,
                                           qemu_plugin_tb_n_insns(tb));
}

/* Called before QEMU carries out a guest system call. */
static void ep_on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t number, uint64_t a1,
                          uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                          uint64_t a7, uint64_t a8) {
  (void)id; (void)vcpu; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
  if (number == EP_MARKER_SYSCALL) ep_store(ep_instructions, 0);
}

static void ep_on_exit(qemu_plugin_id_t id, void *data) {
  (void)id; (void)data;
  ep_store(ep_instructions, 8);
  close(ep_counter_fd);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv) {
  const char *path = NULL;
  (void)info;
  for (int i = 0; i < argc; ++i) {
    if (strncmp(argv[i], "counter=", 8) == 0) path = argv[i] + 8;
  }
  if (path == NULL) {
    fprintf(stderr, "ep_insn plugin: give the counter file as -plugin libep_insn.so,counter=PATH\n");
    return 1;
  }
  ep_counter_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (ep_counter_fd < 0) {
    perror(path);
    return 1;
  }
  ep_store(0, 0);
  ep_store(0, 8);
  qemu_plugin_register_vcpu_tb_trans_cb(id, ep_on_translate);
  qemu_plugin_register_vcpu_syscall_cb(id, ep_on_syscall);
  qemu_plugin_register_atexit_cb(id, ep_on_exit, NULL);
  return 0;
}
