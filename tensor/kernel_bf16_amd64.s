#include "textflag.h"
#include "tile12x32_amd64.h"

// Go's assembler has no AVX512_BF16 mnemonics, so VDPBF16PS is spelled out
// as its EVEX bytes (EVEX.512.F3.0F38.W0 52 /r). Only three bytes vary
// between the instructions the kernel needs: P0 (the high bits of the
// destination register), P1 (the first source, zmm0 or zmm1) and ModRM.
// Every encoding below was taken from GNU as (objdump of
// "vdpbf16ps zmmD, zmmS, zmm2" assembled with -msyntax=intel -mnaked-reg),
// and the comment beside each use names the instruction.
#define VDPBF16PS(p0, p1, modrm) \
	BYTE $0x62; BYTE $p0; BYTE $p1; BYTE $0x48; BYTE $0x52; BYTE $modrm

// STEPBF16 broadcasts A's pair of bf16 values at off(SI) to every lane of
// Z2 and adds its dot products with the B pairs in Z0:Z1 to an accumulator
// row.
#define STEPBF16(off, p0, lo, hi) \
	VPBROADCASTD off(SI), Z2 \
	VDPBF16PS(p0, 0x7e, lo) \
	VDPBF16PS(p0, 0x76, hi)

// func kernel12x32BF16(kc int, a, b, c *float32, ldc int, alpha, beta float32)
//
// The f32 12×32 kernel's register tile and epilogue (kernel_amd64.s) with
// bf16 operands: kc counts pairs of k steps. Each 32-bit slot of the packed
// panels holds the bf16 values of steps 2p (low half) and 2p+1 (high half),
// so one VDPBF16PS adds two products per lane to f32 accumulators. Each
// pair step loads one 32-wide row of B pairs (Z0, Z1) and broadcasts the
// twelve pairs of the packed A column.
TEXT ·kernel12x32BF16(SB), NOSPLIT, $0-48
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	TILE12x32_ZERO

loopbf16:
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	STEPBF16(0, 0x72, 0xc2, 0xca)  // vdpbf16ps zmm8, zmm0, zmm2; vdpbf16ps zmm9, zmm1, zmm2
	STEPBF16(4, 0x72, 0xd2, 0xda)  // zmm10, zmm11
	STEPBF16(8, 0x72, 0xe2, 0xea)  // zmm12, zmm13
	STEPBF16(12, 0x72, 0xf2, 0xfa) // zmm14, zmm15
	STEPBF16(16, 0xe2, 0xc2, 0xca) // zmm16, zmm17
	STEPBF16(20, 0xe2, 0xd2, 0xda) // zmm18, zmm19
	STEPBF16(24, 0xe2, 0xe2, 0xea) // zmm20, zmm21
	STEPBF16(28, 0xe2, 0xf2, 0xfa) // zmm22, zmm23
	STEPBF16(32, 0x62, 0xc2, 0xca) // zmm24, zmm25
	STEPBF16(36, 0x62, 0xd2, 0xda) // zmm26, zmm27
	STEPBF16(40, 0x62, 0xe2, 0xea) // zmm28, zmm29
	STEPBF16(44, 0x62, 0xf2, 0xfa) // zmm30, zmm31
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  loopbf16

	VBROADCASTSS alpha+40(FP), Z0
	TILE12x32_SCALE

	// beta == ±0 overwrites C without reading it.
	MOVL  beta+44(FP), AX
	TESTL $0x7fffffff, AX
	JZ    overwritebf16

	VBROADCASTSS beta+44(FP), Z1
	TILE12x32_STORE_ROWS(TILE12x32_ROW_BETA)
	VZEROUPPER
	RET

overwritebf16:
	TILE12x32_STORE_ROWS(TILE12x32_ROW_STORE)
	VZEROUPPER
	RET
