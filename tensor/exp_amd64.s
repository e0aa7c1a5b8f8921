#include "textflag.h"

// func expBlocksAVX2(dst, src *float32, n int) int
//
// expSlice's algorithm on eight lanes at a time (see exp.go), with the
// constants in expConsts. It stops before the first 8-element block that
// holds a value outside [-87, 88] or NaN, and returns how many elements it
// wrote.
TEXT ·expBlocksAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	XORQ AX, AX

	VBROADCASTSS ·expConsts+0(SB), Y5   // log2e
	VBROADCASTSS ·expConsts+4(SB), Y6   // round
	VBROADCASTSS ·expConsts+8(SB), Y7   // ln2Hi
	VBROADCASTSS ·expConsts+12(SB), Y8  // ln2Lo
	VBROADCASTSS ·expConsts+16(SB), Y9  // polynomial, highest degree first
	VBROADCASTSS ·expConsts+20(SB), Y10
	VBROADCASTSS ·expConsts+24(SB), Y11
	VBROADCASTSS ·expConsts+28(SB), Y12
	VBROADCASTSS ·expConsts+32(SB), Y13
	VBROADCASTSS ·expConsts+36(SB), Y14
	VBROADCASTSS ·expConsts+40(SB), Y15 // 1

loop:
	TESTQ CX, CX
	JZ    done
	VMOVUPS (SI)(AX*4), Y0

	// All eight in [-87, 88]? The ordered compares are false for NaN.
	VBROADCASTSS ·expConsts+44(SB), Y1
	VCMPPS       $0x1d, Y1, Y0, Y1 // x >= -87
	VBROADCASTSS ·expConsts+48(SB), Y2
	VCMPPS       $0x12, Y2, Y0, Y2 // x <= 88
	VANDPS       Y1, Y2, Y1
	VMOVMSKPS    Y1, BX
	CMPL         BX, $0xff
	JNE          done

	VMOVAPS      Y6, Y1
	VFMADD231PS  Y5, Y0, Y1          // t = x·log2e + round
	VSUBPS       Y6, Y1, Y2          // n = t - round, as a float
	VPBROADCASTD ·expConsts+52(SB), Y3
	VPSUBD       Y3, Y1, Y3          // n + 127 = bits(t) - (bits(round) - 127)
	VPSLLD       $23, Y3, Y3         // 2^n
	VFNMADD231PS Y7, Y2, Y0          // r = x - n·ln2Hi
	VFNMADD231PS Y8, Y2, Y0          // r -= n·ln2Lo
	VMOVAPS      Y9, Y4
	VFMADD213PS  Y10, Y0, Y4
	VFMADD213PS  Y11, Y0, Y4
	VFMADD213PS  Y12, Y0, Y4
	VFMADD213PS  Y13, Y0, Y4
	VFMADD213PS  Y14, Y0, Y4         // p(r)
	VMULPS       Y0, Y0, Y1          // r²
	VFMADD213PS  Y0, Y1, Y4          // p·r² + r
	VADDPS       Y15, Y4, Y4         // + 1
	VMULPS       Y3, Y4, Y4          // · 2^n
	VMOVUPS      Y4, (DI)(AX*4)

	ADDQ $8, AX
	DECQ CX
	JMP  loop

done:
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET
