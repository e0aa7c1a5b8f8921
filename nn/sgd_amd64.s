#include "textflag.h"

// func momentumStepAVX512(value, grad, buf *float32, blocks int, lr, momentum, weightDecay float32)
//
// For 16 elements at a time: d = momentum·buf + (grad + weightDecay·value);
// buf = d; value -= lr·d. Separate multiplies and adds (no FMA), rounded
// as Go rounds the scalar loop in momentumStep.
TEXT ·momentumStepAVX512(SB), NOSPLIT, $0-44
	MOVQ         value+0(FP), DI
	MOVQ         grad+8(FP), SI
	MOVQ         buf+16(FP), DX
	MOVQ         blocks+24(FP), CX
	VBROADCASTSS lr+32(FP), Z5
	VBROADCASTSS momentum+36(FP), Z6
	VBROADCASTSS weightDecay+40(FP), Z7

loop:
	VMOVUPS (DI), Z0
	VMULPS  Z0, Z7, Z1   // weightDecay·value
	VADDPS  (SI), Z1, Z1 // + grad
	VMULPS  (DX), Z6, Z2 // momentum·buf
	VADDPS  Z1, Z2, Z2   // d
	VMOVUPS Z2, (DX)
	VMULPS  Z2, Z5, Z3   // lr·d
	VSUBPS  Z3, Z0, Z0   // value − lr·d
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	ADDQ    $64, DX
	DECQ    CX
	JNZ     loop
	VZEROUPPER
	RET
