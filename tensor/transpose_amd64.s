#include "textflag.h"

// func transpose8x8AVX(dst *float32, dstStride int, src *float32, srcStride int, blocks, groups int)
//
// For each block of eight steps, for each group of eight lanes: load the
// group's eight source rows of eight floats (row i at src + i·srcStride),
// transpose the 8×8 tile in registers (unpack pairs, shuffle quads,
// exchange 128-bit halves) and store its eight columns at dst + s·dstStride
// + 8·group. A block's stores fill eight whole rows of the panel, so each
// destination cache line is written at once.
TEXT ·transpose8x8AVX(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), R12
	MOVQ dstStride+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), R13
	MOVQ srcStride+24(FP), R9
	SHLQ $2, R9
	MOVQ blocks+32(FP), CX
	LEAQ (R9)(R9*2), R10 // 3·srcStride
	LEAQ (R8)(R8*2), R11 // 3·dstStride

block:
	MOVQ R12, DI
	MOVQ R13, SI
	MOVQ groups+40(FP), DX

group:
	// Rows 0-3 from SI, rows 4-7 from BX = SI + 4·srcStride.
	LEAQ    (SI)(R9*4), BX
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R9*1), Y1
	VMOVUPS (SI)(R9*2), Y2
	VMOVUPS (SI)(R10*1), Y3
	VMOVUPS (BX), Y4
	VMOVUPS (BX)(R9*1), Y5
	VMOVUPS (BX)(R9*2), Y6
	VMOVUPS (BX)(R10*1), Y7

	VUNPCKLPS Y1, Y0, Y8  // r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5]
	VUNPCKHPS Y1, Y0, Y9  // steps 2, 3 | 6, 7
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15

	VSHUFPS $0x44, Y10, Y8, Y0  // rows 0-3 of step 0 | step 4
	VSHUFPS $0xEE, Y10, Y8, Y1  // step 1 | 5
	VSHUFPS $0x44, Y11, Y9, Y2  // step 2 | 6
	VSHUFPS $0xEE, Y11, Y9, Y3  // step 3 | 7
	VSHUFPS $0x44, Y14, Y12, Y4 // rows 4-7 of the same steps
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7

	VPERM2F128 $0x20, Y4, Y0, Y8  // step 0, rows 0-7
	VPERM2F128 $0x20, Y5, Y1, Y9  // step 1
	VPERM2F128 $0x20, Y6, Y2, Y10 // step 2
	VPERM2F128 $0x20, Y7, Y3, Y11 // step 3
	VPERM2F128 $0x31, Y4, Y0, Y12 // step 4
	VPERM2F128 $0x31, Y5, Y1, Y13 // step 5
	VPERM2F128 $0x31, Y6, Y2, Y14 // step 6
	VPERM2F128 $0x31, Y7, Y3, Y15 // step 7

	LEAQ    (DI)(R8*4), BX
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(R8*1)
	VMOVUPS Y10, (DI)(R8*2)
	VMOVUPS Y11, (DI)(R11*1)
	VMOVUPS Y12, (BX)
	VMOVUPS Y13, (BX)(R8*1)
	VMOVUPS Y14, (BX)(R8*2)
	VMOVUPS Y15, (BX)(R11*1)

	ADDQ $32, DI        // next eight lanes of the panel
	LEAQ (SI)(R9*8), SI // next eight rows
	DECQ DX
	JNZ  group

	ADDQ $32, R13         // next eight steps of the rows
	LEAQ (R12)(R8*8), R12 // next eight steps of the panel
	DECQ CX
	JNZ  block
	VZEROUPPER
	RET
