// Shared by the 12×32 micro-kernels (kernel_amd64.s, kernel_bf16_amd64.s):
// the tile is held in the twenty-four accumulators Z8-Z31, two per row of C;
// C's address is in DX and its row stride in bytes in R8.

// TILE12x32_ZERO clears the accumulators.
#define TILE12x32_ZERO \
	VPXORD Z8, Z8, Z8 \
	VPXORD Z9, Z9, Z9 \
	VPXORD Z10, Z10, Z10 \
	VPXORD Z11, Z11, Z11 \
	VPXORD Z12, Z12, Z12 \
	VPXORD Z13, Z13, Z13 \
	VPXORD Z14, Z14, Z14 \
	VPXORD Z15, Z15, Z15 \
	VPXORD Z16, Z16, Z16 \
	VPXORD Z17, Z17, Z17 \
	VPXORD Z18, Z18, Z18 \
	VPXORD Z19, Z19, Z19 \
	VPXORD Z20, Z20, Z20 \
	VPXORD Z21, Z21, Z21 \
	VPXORD Z22, Z22, Z22 \
	VPXORD Z23, Z23, Z23 \
	VPXORD Z24, Z24, Z24 \
	VPXORD Z25, Z25, Z25 \
	VPXORD Z26, Z26, Z26 \
	VPXORD Z27, Z27, Z27 \
	VPXORD Z28, Z28, Z28 \
	VPXORD Z29, Z29, Z29 \
	VPXORD Z30, Z30, Z30 \
	VPXORD Z31, Z31, Z31

// TILE12x32_ROW_STORE writes accumulator row (lo, hi) to C at DX and
// advances DX by one row; TILE12x32_ROW_BETA first adds beta (Z1) times the
// old C row.
#define TILE12x32_ROW_STORE(lo, hi) \
	VMOVUPS lo, (DX) \
	VMOVUPS hi, 64(DX) \
	ADDQ    R8, DX

#define TILE12x32_ROW_BETA(lo, hi) \
	VFMADD231PS (DX), Z1, lo \
	VFMADD231PS 64(DX), Z1, hi \
	TILE12x32_ROW_STORE(lo, hi)

// TILE12x32_SCALE multiplies the accumulators by Z0 (alpha).
#define TILE12x32_SCALE \
	VMULPS Z0, Z8, Z8 \
	VMULPS Z0, Z9, Z9 \
	VMULPS Z0, Z10, Z10 \
	VMULPS Z0, Z11, Z11 \
	VMULPS Z0, Z12, Z12 \
	VMULPS Z0, Z13, Z13 \
	VMULPS Z0, Z14, Z14 \
	VMULPS Z0, Z15, Z15 \
	VMULPS Z0, Z16, Z16 \
	VMULPS Z0, Z17, Z17 \
	VMULPS Z0, Z18, Z18 \
	VMULPS Z0, Z19, Z19 \
	VMULPS Z0, Z20, Z20 \
	VMULPS Z0, Z21, Z21 \
	VMULPS Z0, Z22, Z22 \
	VMULPS Z0, Z23, Z23 \
	VMULPS Z0, Z24, Z24 \
	VMULPS Z0, Z25, Z25 \
	VMULPS Z0, Z26, Z26 \
	VMULPS Z0, Z27, Z27 \
	VMULPS Z0, Z28, Z28 \
	VMULPS Z0, Z29, Z29 \
	VMULPS Z0, Z30, Z30 \
	VMULPS Z0, Z31, Z31

// TILE12x32_STORE_ROWS(ROW) applies ROW to the twelve rows of the tile.
#define TILE12x32_STORE_ROWS(ROW) \
	ROW(Z8, Z9) \
	ROW(Z10, Z11) \
	ROW(Z12, Z13) \
	ROW(Z14, Z15) \
	ROW(Z16, Z17) \
	ROW(Z18, Z19) \
	ROW(Z20, Z21) \
	ROW(Z22, Z23) \
	ROW(Z24, Z25) \
	ROW(Z26, Z27) \
	ROW(Z28, Z29) \
	ROW(Z30, Z31)
