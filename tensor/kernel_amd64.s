#include "textflag.h"
#include "tile12x32_amd64.h"

// ROW_STORE writes accumulator row (lo, hi) to C at DX and advances DX by
// one row; ROW_BETA first adds beta (Y1) times the old C row.
#define ROW_STORE(lo, hi) \
	VMOVUPS lo, (DX) \
	VMOVUPS hi, 32(DX) \
	ADDQ    R8, DX

#define ROW_BETA(lo, hi) \
	VFMADD231PS (DX), Y1, lo \
	VFMADD231PS 32(DX), Y1, hi \
	ROW_STORE(lo, hi)

// func kernel6x16AVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32)
//
// Twelve YMM accumulators (Y4-Y15) hold the 6×16 tile; each step of k loads
// one 16-wide row of the packed B panel (Y0, Y1), broadcasts the six values
// of the packed A column (Y2, Y3) and issues twelve FMAs.
TEXT ·kernel6x16AVX2(SB), NOSPLIT, $0-48
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

loop:
	VMOVUPS      (DI), Y0
	VMOVUPS      32(DI), Y1
	VBROADCASTSS (SI), Y2
	VBROADCASTSS 4(SI), Y3
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS 8(SI), Y2
	VBROADCASTSS 12(SI), Y3
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS 16(SI), Y2
	VBROADCASTSS 20(SI), Y3
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	VFMADD231PS  Y0, Y3, Y14
	VFMADD231PS  Y1, Y3, Y15
	ADDQ         $24, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loop

	VBROADCASTSS alpha+40(FP), Y0
	VMULPS       Y0, Y4, Y4
	VMULPS       Y0, Y5, Y5
	VMULPS       Y0, Y6, Y6
	VMULPS       Y0, Y7, Y7
	VMULPS       Y0, Y8, Y8
	VMULPS       Y0, Y9, Y9
	VMULPS       Y0, Y10, Y10
	VMULPS       Y0, Y11, Y11
	VMULPS       Y0, Y12, Y12
	VMULPS       Y0, Y13, Y13
	VMULPS       Y0, Y14, Y14
	VMULPS       Y0, Y15, Y15

	// beta == ±0 overwrites C without reading it.
	MOVL  beta+44(FP), AX
	TESTL $0x7fffffff, AX
	JZ    overwrite

	VBROADCASTSS beta+44(FP), Y1
	ROW_BETA(Y4, Y5)
	ROW_BETA(Y6, Y7)
	ROW_BETA(Y8, Y9)
	ROW_BETA(Y10, Y11)
	ROW_BETA(Y12, Y13)
	ROW_BETA(Y14, Y15)
	VZEROUPPER
	RET

overwrite:
	ROW_STORE(Y4, Y5)
	ROW_STORE(Y6, Y7)
	ROW_STORE(Y8, Y9)
	ROW_STORE(Y10, Y11)
	ROW_STORE(Y12, Y13)
	ROW_STORE(Y14, Y15)
	VZEROUPPER
	RET

// STEP512 broadcasts A's value at off(SI) and adds its products with the B
// row in Z0:Z1 to the accumulator row (lo, hi).
#define STEP512(off, lo, hi) \
	VBROADCASTSS off(SI), Z2 \
	VFMADD231PS  Z0, Z2, lo \
	VFMADD231PS  Z1, Z2, hi

// func kernel12x32AVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32)
//
// Twenty-four ZMM accumulators (Z8-Z31) hold the 12×32 tile; each step of k
// loads one 32-wide row of packed B (Z0, Z1) and broadcasts the twelve
// values of the packed A column, for twenty-four FMAs.
TEXT ·kernel12x32AVX512(SB), NOSPLIT, $0-48
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	TILE12x32_ZERO

loop512:
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	STEP512(0, Z8, Z9)
	STEP512(4, Z10, Z11)
	STEP512(8, Z12, Z13)
	STEP512(12, Z14, Z15)
	STEP512(16, Z16, Z17)
	STEP512(20, Z18, Z19)
	STEP512(24, Z20, Z21)
	STEP512(28, Z22, Z23)
	STEP512(32, Z24, Z25)
	STEP512(36, Z26, Z27)
	STEP512(40, Z28, Z29)
	STEP512(44, Z30, Z31)
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  loop512

	VBROADCASTSS alpha+40(FP), Z0
	TILE12x32_SCALE

	// beta == ±0 overwrites C without reading it.
	MOVL  beta+44(FP), AX
	TESTL $0x7fffffff, AX
	JZ    overwrite512

	VBROADCASTSS beta+44(FP), Z1
	TILE12x32_STORE_ROWS(TILE12x32_ROW_BETA)
	VZEROUPPER
	RET

overwrite512:
	TILE12x32_STORE_ROWS(TILE12x32_ROW_STORE)
	VZEROUPPER
	RET
