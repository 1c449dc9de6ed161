/* Armv6-M (Cortex-M0/M0+, Thumb-1) only: LLVM calls the soft-float helpers there by their GNU
 * names (__addsf3, __mulsf3, ...), which the v6-m libgcc does not define: it has only the Arm
 * run-time ABI names (__aeabi_fadd, ...). These forward one to the other (one call each). */
#if defined(__ARM_ARCH_6M__)
float __aeabi_fadd(float, float);
float __aeabi_fsub(float, float);
float __aeabi_fmul(float, float);
float __aeabi_fdiv(float, float);
float __aeabi_i2f(int);
float __aeabi_ui2f(unsigned);
int __aeabi_f2iz(float);

float __addsf3(float a, float b);
float __subsf3(float a, float b);
float __mulsf3(float a, float b);
float __divsf3(float a, float b);
float __floatsisf(int a);
float __floatunsisf(unsigned a);
int __fixsfsi(float a);

float __addsf3(float a, float b) { return __aeabi_fadd(a, b); }
float __subsf3(float a, float b) { return __aeabi_fsub(a, b); }
float __mulsf3(float a, float b) { return __aeabi_fmul(a, b); }
float __divsf3(float a, float b) { return __aeabi_fdiv(a, b); }
float __floatsisf(int a) { return __aeabi_i2f(a); }
float __floatunsisf(unsigned a) { return __aeabi_ui2f(a); }
int __fixsfsi(float a) { return __aeabi_f2iz(a); }
#endif
