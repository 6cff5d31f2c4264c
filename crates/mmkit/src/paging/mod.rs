//! Page tables in the real bit layouts of x86-64, RISC-V, AArch64 and LoongArch64.
