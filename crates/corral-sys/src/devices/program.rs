//! Compiling a [`DevicePolicy`] into a `BPF_PROG_TYPE_CGROUP_DEVICE` program.
//!
//! The kernel calls the program with a `struct bpf_cgroup_dev_ctx` (`include/uapi/linux/
//! bpf.h`): `u32 access_type` (the `BPF_DEVCG_DEV_*` type in the low 16 bits, the
//! `BPF_DEVCG_ACC_*` accesses in the high 16), `u32 major`, `u32 minor`. It returns 1 to
//! allow and 0 to deny. The program is straight-line code, one block per exception:
//!
//! ```text
//!     r2 = ctx->access_type; r3 = r2 >> 16 (access); r2 &= 0xffff (type)
//!     r4 = ctx->major; r5 = ctx->minor
//! per exception:
//!     if r2 != TYPE goto next; [if r4 != MAJOR goto next]; [if r5 != MINOR goto next]
//!     allow list: if (r3 & ~ACCESS) != 0 goto next   (the exception must cover the request)
//!     deny list:  if (r3 & ACCESS) == 0 goto next    (any shared access denies)
//!     r0 = !default; exit
//! next: ...
//!     r0 = default; exit
//! ```
//!
//! All exceptions of a policy have the same verdict, so their order does not matter.

use super::policy::DeviceException;
use super::{DeviceAccess, DevicePolicy, DeviceType};

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class, operation and source.
    pub code: u8,
    /// Destination register (low nibble of the register byte).
    pub dst: u8,
    /// Source register (high nibble).
    pub src: u8,
    /// Signed offset: the jump distance, or the memory offset of a load.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

// Opcodes (`include/uapi/linux/bpf_common.h`, `bpf.h`): class | operation | source/size.
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_MEM: u8 = 0x60;
const BPF_W: u8 = 0x00;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

/// `BPF_DEVCG_DEV_BLOCK` and `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// Registers: r0 result, r1 context then scratch, r2 type, r3 access, r4 major, r5 minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// A placeholder jump offset, patched to "the next block" once the block's length is known.
const NEXT: i16 = i16::MIN;

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Self {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// `dst = *(u32 *)(src + off)`.
    const fn load_word(dst: u8, src: u8, off: i16) -> Self {
        Self::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }

    /// 32-bit ALU with an immediate (the upper half of `dst` is zeroed).
    const fn alu32_imm(op: u8, dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
    }

    /// 32-bit ALU with a register.
    const fn alu32_reg(op: u8, dst: u8, src: u8) -> Self {
        Self::new(BPF_ALU | op | BPF_X, dst, src, 0, 0)
    }

    /// `if dst <op> imm goto pc + 1 + off` (64-bit compare, `imm` sign-extended).
    const fn jump_imm(op: u8, dst: u8, imm: i32, off: i16) -> Self {
        Self::new(BPF_JMP | op | BPF_K, dst, 0, off, imm)
    }

    /// `if dst <op> src goto pc + 1 + off`.
    const fn jump_reg(op: u8, dst: u8, src: u8, off: i16) -> Self {
        Self::new(BPF_JMP | op | BPF_X, dst, src, off, 0)
    }

    const fn exit() -> Self {
        Self::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    /// The 8 bytes the kernel reads (host byte order, as `struct bpf_insn` in memory).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut out = [0; 8];
        out[0] = self.code;
        out[1] = (self.dst & 0x0f) | (self.src << 4);
        out[2..4].copy_from_slice(&self.off.to_ne_bytes());
        out[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        out
    }
}

/// A compiled device program: the instructions and whether it ever denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProgram {
    insns: Vec<Insn>,
}

impl DeviceProgram {
    /// Compiles `policy`.
    pub fn compile(policy: &DevicePolicy) -> Self {
        let mut insns = vec![
            Insn::load_word(R2, R1, 0),
            Insn::alu32_reg(BPF_MOV, R3, R2),
            Insn::alu32_imm(BPF_RSH, R3, 16),
            Insn::alu32_imm(BPF_AND, R2, 0xffff),
            Insn::load_word(R4, R1, 4),
            Insn::load_word(R5, R1, 8),
        ];
        let verdict = i32::from(!policy.default_allow());
        for exception in policy.exceptions() {
            let block = exception_block(&exception, policy.default_allow(), verdict);
            insns.extend(block);
        }
        insns.push(Insn::alu32_imm(
            BPF_MOV,
            R0,
            i32::from(policy.default_allow()),
        ));
        insns.push(Insn::exit());
        Self { insns }
    }

    /// The instructions.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// The instructions as the kernel reads them (`BPF_PROG_LOAD`'s `insns`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.insns.iter().flat_map(|insn| insn.to_bytes()).collect()
    }
}

/// The instructions of one exception; every `NEXT` jump lands just past the block.
fn exception_block(exception: &DeviceException, default_allow: bool, verdict: i32) -> Vec<Insn> {
    let kind = match exception.kind {
        DeviceType::Block => DEV_BLOCK,
        // A policy holds no `All` exception: "a" rules reset it.
        DeviceType::Char | DeviceType::All => DEV_CHAR,
    };
    let mut block = vec![Insn::jump_imm(BPF_JNE, R2, kind, NEXT)];
    for (register, number) in [(R4, exception.major), (R5, exception.minor)] {
        let Some(number) = number else { continue };
        match i32::try_from(number) {
            Ok(imm) => block.push(Insn::jump_imm(BPF_JNE, register, imm, NEXT)),
            // An immediate is sign-extended to 64 bits, the loaded number is not: numbers
            // above i32::MAX go through r1 (a 32-bit move zero-extends).
            Err(_) => {
                block.push(Insn::alu32_imm(BPF_MOV, R1, number.cast_signed()));
                block.push(Insn::jump_reg(BPF_JNE, register, R1, NEXT));
            }
        }
    }
    let access = i32::from(exception.access.bits());
    if default_allow {
        // Deny list: skip unless the request shares an access with the exception.
        block.push(Insn::alu32_reg(BPF_MOV, R1, R3));
        block.push(Insn::alu32_imm(BPF_AND, R1, access));
        block.push(Insn::jump_imm(BPF_JEQ, R1, 0, NEXT));
    } else if exception.access != DeviceAccess::ALL {
        // Allow list: skip when the request has an access the exception lacks.
        let missing = i32::from(DeviceAccess::ALL.difference(exception.access).bits());
        block.push(Insn::alu32_reg(BPF_MOV, R1, R3));
        block.push(Insn::alu32_imm(BPF_AND, R1, missing));
        block.push(Insn::jump_imm(BPF_JNE, R1, 0, NEXT));
    }
    block.push(Insn::alu32_imm(BPF_MOV, R0, verdict));
    block.push(Insn::exit());
    let len = block.len();
    for (index, insn) in block.iter_mut().enumerate() {
        if insn.off == NEXT {
            // Jumps are relative to the next instruction; the block is a few instructions.
            insn.off = i16::try_from(len - index - 1).unwrap_or(i16::MAX);
        }
    }
    block
}

/// An interpreter of the instructions [`DeviceProgram::compile`] emits, so tests check the
/// program itself (not only the policy) without loading it.
#[cfg(test)]
pub(crate) fn run(program: &DeviceProgram, ctx: [u32; 3]) -> u64 {
    // r1 holds the context pointer, modelled as a marker the loads check for.
    let mut regs = [0u64; 11];
    regs[1] = u64::MAX;
    let mut pc = 0usize;
    let insns = program.insns();
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 10_000, "program does not terminate");
        let insn = insns[pc];
        let (dst, src) = (usize::from(insn.dst), usize::from(insn.src));
        pc += 1;
        match insn.code {
            0x61 => {
                // ldxw: the context is the only memory; r1 must still point at it.
                assert_eq!(src, 1, "load from a register other than the context");
                assert_eq!(regs[1], u64::MAX, "r1 no longer holds the context");
                let index = usize::try_from(insn.off).unwrap() / 4;
                regs[dst] = u64::from(ctx[index]);
            }
            code if code & 0x07 == BPF_ALU => {
                let low = |value: u64| u32::try_from(value & 0xffff_ffff).unwrap();
                let operand = if code & BPF_X != 0 {
                    low(regs[src])
                } else {
                    insn.imm.cast_unsigned()
                };
                let value = low(regs[dst]);
                let result = match code & 0xf0 {
                    BPF_MOV => operand,
                    BPF_AND => value & operand,
                    BPF_RSH => value >> operand,
                    other => panic!("unexpected alu op {other:#x}"),
                };
                regs[dst] = u64::from(result);
            }
            0x95 => return regs[0],
            code if code & 0x07 == BPF_JMP => {
                let operand = if code & BPF_X != 0 {
                    regs[src]
                } else {
                    i64::from(insn.imm).cast_unsigned()
                };
                let taken = match code & 0xf0 {
                    BPF_JEQ => regs[dst] == operand,
                    BPF_JNE => regs[dst] != operand,
                    other => panic!("unexpected jump op {other:#x}"),
                };
                if taken {
                    pc = usize::try_from(i64::try_from(pc).unwrap() + i64::from(insn.off)).unwrap();
                }
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
        if pc == 0 || insns.get(pc).is_none() {
            panic!("jump out of the program to {pc}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::tests::docker_default_rules;
    use crate::devices::{DeviceRule, DeviceRuleError};

    /// Runs `program` for one request through the interpreter.
    fn verdict(
        program: &DeviceProgram,
        kind: DeviceType,
        major: u32,
        minor: u32,
        access: DeviceAccess,
    ) -> bool {
        let kind = match kind {
            DeviceType::Block => 1,
            _ => 2,
        };
        let access_type = (u32::from(access.bits()) << 16) | kind;
        match run(program, [access_type, major, minor]) {
            0 => false,
            1 => true,
            other => panic!("program returned {other}"),
        }
    }

    const ACCESSES: [&str; 7] = ["r", "w", "m", "rw", "rm", "wm", "rwm"];

    /// Checks the program against the policy over every access and a grid of devices
    /// around the numbers the rules name.
    fn assert_program_matches_policy(rules: &[DeviceRule]) {
        let policy = DevicePolicy::from_rules(rules).unwrap();
        let program = DeviceProgram::compile(&policy);
        let mut numbers = vec![0u32, 1, 2, 3, 4, 5, 7, 8, 9, 10, 136, 200, 229, u32::MAX];
        for rule in rules {
            numbers.extend(rule.major);
            numbers.extend(rule.minor);
            numbers.extend(rule.major.map(|n| n.wrapping_add(1)));
            numbers.extend(rule.minor.map(|n| n.wrapping_add(1)));
        }
        numbers.sort_unstable();
        numbers.dedup();
        for kind in [DeviceType::Char, DeviceType::Block] {
            for &major in &numbers {
                for &minor in &numbers {
                    for access in ACCESSES {
                        let access = DeviceAccess::parse(access).unwrap();
                        assert_eq!(
                            verdict(&program, kind, major, minor, access),
                            policy.allows(kind, major, minor, access),
                            "{kind:?} {major}:{minor} {access} under {rules:?}"
                        );
                    }
                }
            }
        }
    }

    fn rule(
        allow: bool,
        kind: DeviceType,
        major: Option<u32>,
        minor: Option<u32>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: DeviceAccess::parse(access).unwrap(),
        }
    }

    #[test]
    fn docker_default_program_allows_exactly_the_standard_devices() {
        let program =
            DeviceProgram::compile(&DevicePolicy::from_rules(&docker_default_rules()).unwrap());
        let acc = |a| DeviceAccess::parse(a).unwrap();
        let c = DeviceType::Char;
        let b = DeviceType::Block;
        // Written out, not derived from the policy: what Docker's defaults mean.
        assert!(verdict(&program, c, 1, 3, acc("rw"))); // /dev/null
        assert!(verdict(&program, c, 1, 9, acc("r"))); // /dev/urandom
        assert!(verdict(&program, c, 5, 2, acc("rw"))); // /dev/ptmx
        assert!(verdict(&program, c, 136, 4, acc("rw"))); // /dev/pts/4
        assert!(verdict(&program, b, 8, 0, acc("m"))); // mknod /dev/sda
        assert!(!verdict(&program, b, 8, 0, acc("r"))); // open /dev/sda
        assert!(!verdict(&program, b, 8, 0, acc("rm")));
        assert!(!verdict(&program, c, 10, 237, acc("r"))); // /dev/loop-control
        assert!(!verdict(&program, c, 1, 1, acc("w"))); // /dev/mem
        assert!(!verdict(&program, b, 1, 3, acc("r"))); // block 1:3 is not /dev/null
        assert_program_matches_policy(&docker_default_rules());
    }

    #[test]
    fn program_matches_policy_for_deny_lists_wildcards_and_partial_access() {
        use DeviceType::{All, Block, Char};
        assert_program_matches_policy(&[]);
        assert_program_matches_policy(&[rule(true, All, None, None, "rwm")]);
        assert_program_matches_policy(&[
            rule(true, All, None, None, "rwm"),
            rule(false, Block, Some(8), None, "w"),
            rule(false, Char, None, Some(3), "rm"),
            rule(false, Char, Some(1), Some(5), "rwm"),
        ]);
        assert_program_matches_policy(&[
            rule(false, All, None, None, "rwm"),
            rule(true, Char, Some(1), Some(3), "r"),
            rule(true, Char, Some(1), None, "w"),
            rule(true, Block, None, Some(0), "rm"),
            rule(true, Char, Some(u32::MAX), Some(3_000_000_000), "rw"),
        ]);
        let mut rules = docker_default_rules();
        rules.push(rule(true, Char, Some(10), Some(229), "rw"));
        rules.push(rule(false, Char, Some(1), Some(3), "w"));
        assert_program_matches_policy(&rules);
    }

    #[test]
    fn allow_all_and_deny_all_are_two_instructions_after_the_loads() {
        let allow = DeviceProgram::compile(
            &DevicePolicy::from_rules(&[rule(true, DeviceType::All, None, None, "")]).unwrap(),
        );
        assert_eq!(allow.insns().len(), 8);
        assert_eq!(allow.insns()[6], Insn::alu32_imm(BPF_MOV, R0, 1));
        let deny = DeviceProgram::compile(&DevicePolicy::deny_all());
        assert_eq!(deny.insns()[6], Insn::alu32_imm(BPF_MOV, R0, 0));
        assert_eq!(deny.insns()[7], Insn::exit());
    }

    #[test]
    fn encodes_instructions_as_struct_bpf_insn() {
        // ldxw r4, [r1+4]: code 0x61, dst 4 | src 1 << 4, off 4.
        assert_eq!(
            Insn::load_word(R4, R1, 4).to_bytes(),
            [0x61, 0x14, 4, 0, 0, 0, 0, 0]
        );
        // jne r2, 2, +3
        let jne = Insn::jump_imm(BPF_JNE, R2, 2, 3).to_bytes();
        assert_eq!(jne[..2], [0x55, 0x02]);
        assert_eq!(i16::from_ne_bytes([jne[2], jne[3]]), 3);
        assert_eq!(i32::from_ne_bytes([jne[4], jne[5], jne[6], jne[7]]), 2);
        assert_eq!(Insn::exit().to_bytes(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        let program = DeviceProgram::compile(&DevicePolicy::deny_all());
        assert_eq!(program.to_bytes().len(), 8 * program.insns().len());
    }

    #[test]
    fn wildcard_holes_never_reach_the_compiler() {
        let mut rules = docker_default_rules();
        rules.push(rule(false, DeviceType::Char, Some(136), Some(0), "r"));
        assert!(matches!(
            DevicePolicy::from_rules(&rules),
            Err(DeviceRuleError::WildcardHole { .. })
        ));
    }
}
