#include "textflag.h"

// PROLOGUE(in, out) loads the six input pointers of the array at in into
// BX, DX, SI, R8, R9, R10 and the output array's address into DI, sets CX
// to n rounded down to a multiple of 8 (the return value, which the
// function stores) and AX, the element index, to 0.
#define PROLOGUE(in, out) \
	MOVQ in, AX \
	MOVQ 0(AX), BX \
	MOVQ 8(AX), DX \
	MOVQ 16(AX), SI \
	MOVQ 24(AX), R8 \
	MOVQ 32(AX), R9 \
	MOVQ 40(AX), R10 \
	MOVQ out, DI \
	MOVQ n+16(FP), CX \
	ANDQ $-8, CX \
	XORQ AX, AX

// LOAD_SIX loads eight elements at index AX of each input into Y0 … Y5.
#define LOAD_SIX \
	VMOVUPS (BX)(AX*4), Y0 \
	VMOVUPS (DX)(AX*4), Y1 \
	VMOVUPS (SI)(AX*4), Y2 \
	VMOVUPS (R8)(AX*4), Y3 \
	VMOVUPS (R9)(AX*4), Y4 \
	VMOVUPS (R10)(AX*4), Y5

// func btAVX2(t, d *[6]*float32, n int) int
//
// t[k][i] = (Bᵀ·d[·][i])[k] for i below n rounded down to a multiple of 8,
// which it returns; the arithmetic of bt. The six inputs stay in registers,
// the outputs' pointers are reloaded from t for each store.
TEXT ·btAVX2(SB), NOSPLIT, $0-32
	PROLOGUE(d+8(FP), t+0(FP))
	MOVQ CX, ret+24(FP)

	VBROADCASTSS ·winogradConsts+0(SB), Y14 // 2
	VBROADCASTSS ·winogradConsts+4(SB), Y13 // 4
	VBROADCASTSS ·winogradConsts+8(SB), Y12 // 5

btloop:
	CMPQ AX, CX
	JGE  btdone
	LOAD_SIX // d0 … d5 in Y0 … Y5

	VMOVAPS      Y4, Y6
	VFMADD231PS  Y13, Y0, Y6 // t0 = d4 + 4·d0
	VFNMADD231PS Y12, Y2, Y6 //      − 5·d2
	MOVQ         0(DI), R11
	VMOVUPS      Y6, (R11)(AX*4)

	VMOVAPS      Y5, Y7
	VFMADD231PS  Y13, Y1, Y7 // t5 = d5 + 4·d1
	VFNMADD231PS Y12, Y3, Y7 //      − 5·d3
	MOVQ         40(DI), R11
	VMOVUPS      Y7, (R11)(AX*4)

	VMOVAPS      Y4, Y8
	VFNMADD231PS Y13, Y2, Y8 // p = d4 − 4·d2
	VMOVAPS      Y3, Y9
	VFNMADD231PS Y13, Y1, Y9 // q = d3 − 4·d1
	VADDPS       Y9, Y8, Y10 // t1 = p + q
	VSUBPS       Y9, Y8, Y11 // t2 = p − q
	MOVQ         8(DI), R11
	VMOVUPS      Y10, (R11)(AX*4)
	MOVQ         16(DI), R11
	VMOVUPS      Y11, (R11)(AX*4)

	VSUBPS  Y2, Y4, Y8   // r = d4 − d2
	VSUBPS  Y1, Y3, Y9
	VMULPS  Y14, Y9, Y9  // s = 2·(d3 − d1)
	VADDPS  Y9, Y8, Y10  // t3 = r + s
	VSUBPS  Y9, Y8, Y11  // t4 = r − s
	MOVQ    24(DI), R11
	VMOVUPS Y10, (R11)(AX*4)
	MOVQ    32(DI), R11
	VMOVUPS Y11, (R11)(AX*4)

	ADDQ $8, AX
	JMP  btloop

btdone:
	VZEROUPPER
	RET

// func atAVX2(y *[4]*float32, m *[6]*float32, n int) int
//
// y[k][i] = (Aᵀ·m[·][i])[k] for i below n rounded down to a multiple of 8,
// which it returns; the arithmetic of at.
TEXT ·atAVX2(SB), NOSPLIT, $0-32
	PROLOGUE(m+8(FP), y+0(FP))
	MOVQ CX, ret+24(FP)

	VBROADCASTSS ·winogradConsts+0(SB), Y14  // 2
	VBROADCASTSS ·winogradConsts+4(SB), Y13  // 4
	VBROADCASTSS ·winogradConsts+12(SB), Y15 // 8

atloop:
	CMPQ AX, CX
	JGE  atdone
	LOAD_SIX // m0 … m5 in Y0 … Y5

	VADDPS Y2, Y1, Y6 // a = m1 + m2
	VSUBPS Y2, Y1, Y7 // b = m1 − m2
	VADDPS Y4, Y3, Y8 // c = m3 + m4
	VSUBPS Y4, Y3, Y9 // d = m3 − m4

	VADDPS  Y6, Y0, Y10  // y0 = m0 + a
	VADDPS  Y8, Y10, Y10 //      + c
	MOVQ    0(DI), R11
	VMOVUPS Y10, (R11)(AX*4)

	VMOVAPS     Y7, Y10
	VFMADD231PS Y14, Y9, Y10 // y1 = b + 2·d
	MOVQ        8(DI), R11
	VMOVUPS     Y10, (R11)(AX*4)

	VMOVAPS     Y6, Y10
	VFMADD231PS Y13, Y8, Y10 // y2 = a + 4·c
	MOVQ        16(DI), R11
	VMOVUPS     Y10, (R11)(AX*4)

	VADDPS      Y5, Y7, Y10  // y3 = b + m5
	VFMADD231PS Y15, Y9, Y10 //      + 8·d
	MOVQ        24(DI), R11
	VMOVUPS     Y10, (R11)(AX*4)

	ADDQ $8, AX
	JMP  atloop

atdone:
	VZEROUPPER
	RET
