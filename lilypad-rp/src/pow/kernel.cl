// Proof-of-work kernels of lilypad-rp: keccak256(challenge ++ nonce) below a target.
//
// The state layout, the nonce layout and the meaning of a search are in
// lilypad-rp/src/pow/mod.rs. The host builds this file at run time with
//   -D LANES=<1|2|4|8|16>  nonces per work item per step, as one ulongN vector
//                          (a CPU device's SIMD width; 1 on GPUs, which are
//                          SIMD across work items already)
// so every statement of the hot loop is one straight-line vector operation:
// no branch depends on the data except the rare "maybe a proof" path.

#ifndef LANES
#define LANES 1
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#if LANES == 1
typedef ulong lane_t;
#define LANE_IDS ((ulong)0)
#define ANY(m) (m)
#define STORE(v, p) ((p)[0] = (v))
#define LOAD(p) ((p)[0])
#else
typedef CAT(ulong, LANES) lane_t;
#if LANES == 2
#define LANE_IDS ((ulong2)(0, 1))
#elif LANES == 4
#define LANE_IDS ((ulong4)(0, 1, 2, 3))
#elif LANES == 8
#define LANE_IDS ((ulong8)(0, 1, 2, 3, 4, 5, 6, 7))
#elif LANES == 16
#define LANE_IDS ((ulong16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#else
#error "LANES must be 1, 2, 4, 8 or 16"
#endif
#define ANY(m) any(m)
#define STORE(v, p) CAT(vstore, LANES)((v), 0, (p))
#define LOAD(p) CAT(vload, LANES)(0, (p))
#endif

#define ROL(x, n) rotate((x), (lane_t)(n))

__constant ulong RC[24] = {
    0x0000000000000001UL, 0x0000000000008082UL, 0x800000000000808aUL, 0x8000000080008000UL,
    0x000000000000808bUL, 0x0000000080000001UL, 0x8000000080008081UL, 0x8000000000008009UL,
    0x000000000000008aUL, 0x0000000000000088UL, 0x0000000080008009UL, 0x000000008000000aUL,
    0x000000008000808bUL, 0x800000000000008bUL, 0x8000000000008089UL, 0x8000000000008003UL,
    0x8000000000008002UL, 0x8000000000000080UL, 0x000000000000800aUL, 0x800000008000000aUL,
    0x8000000080008081UL, 0x8000000000008080UL, 0x0000000080000001UL, 0x8000000080008008UL,
};

// One keccak-f[1600] round on the 25 lanes a[]: theta, rho and pi into b*,
// chi back into a[], iota.
#define ROUND(a, rc) do { \
        lane_t c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20]; \
        lane_t c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21]; \
        lane_t c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22]; \
        lane_t c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23]; \
        lane_t c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24]; \
        lane_t d0 = c4 ^ ROL(c1, 1); \
        lane_t d1 = c0 ^ ROL(c2, 1); \
        lane_t d2 = c1 ^ ROL(c3, 1); \
        lane_t d3 = c2 ^ ROL(c4, 1); \
        lane_t d4 = c3 ^ ROL(c0, 1); \
        lane_t b0 = a[0] ^ d0; \
        lane_t b1 = ROL((a[6] ^ d1), 44); \
        lane_t b2 = ROL((a[12] ^ d2), 43); \
        lane_t b3 = ROL((a[18] ^ d3), 21); \
        lane_t b4 = ROL((a[24] ^ d4), 14); \
        lane_t b5 = ROL((a[3] ^ d3), 28); \
        lane_t b6 = ROL((a[9] ^ d4), 20); \
        lane_t b7 = ROL((a[10] ^ d0), 3); \
        lane_t b8 = ROL((a[16] ^ d1), 45); \
        lane_t b9 = ROL((a[22] ^ d2), 61); \
        lane_t b10 = ROL((a[1] ^ d1), 1); \
        lane_t b11 = ROL((a[7] ^ d2), 6); \
        lane_t b12 = ROL((a[13] ^ d3), 25); \
        lane_t b13 = ROL((a[19] ^ d4), 8); \
        lane_t b14 = ROL((a[20] ^ d0), 18); \
        lane_t b15 = ROL((a[4] ^ d4), 27); \
        lane_t b16 = ROL((a[5] ^ d0), 36); \
        lane_t b17 = ROL((a[11] ^ d1), 10); \
        lane_t b18 = ROL((a[17] ^ d2), 15); \
        lane_t b19 = ROL((a[23] ^ d3), 56); \
        lane_t b20 = ROL((a[2] ^ d2), 62); \
        lane_t b21 = ROL((a[8] ^ d3), 55); \
        lane_t b22 = ROL((a[14] ^ d4), 39); \
        lane_t b23 = ROL((a[15] ^ d0), 41); \
        lane_t b24 = ROL((a[21] ^ d1), 2); \
        a[0] = b0 ^ (~b1 & b2); \
        a[1] = b1 ^ (~b2 & b3); \
        a[2] = b2 ^ (~b3 & b4); \
        a[3] = b3 ^ (~b4 & b0); \
        a[4] = b4 ^ (~b0 & b1); \
        a[5] = b5 ^ (~b6 & b7); \
        a[6] = b6 ^ (~b7 & b8); \
        a[7] = b7 ^ (~b8 & b9); \
        a[8] = b8 ^ (~b9 & b5); \
        a[9] = b9 ^ (~b5 & b6); \
        a[10] = b10 ^ (~b11 & b12); \
        a[11] = b11 ^ (~b12 & b13); \
        a[12] = b12 ^ (~b13 & b14); \
        a[13] = b13 ^ (~b14 & b10); \
        a[14] = b14 ^ (~b10 & b11); \
        a[15] = b15 ^ (~b16 & b17); \
        a[16] = b16 ^ (~b17 & b18); \
        a[17] = b17 ^ (~b18 & b19); \
        a[18] = b18 ^ (~b19 & b15); \
        a[19] = b19 ^ (~b15 & b16); \
        a[20] = b20 ^ (~b21 & b22); \
        a[21] = b21 ^ (~b22 & b23); \
        a[22] = b22 ^ (~b23 & b24); \
        a[23] = b23 ^ (~b24 & b20); \
        a[24] = b24 ^ (~b20 & b21); \
        a[0] ^= (rc); \
    } while (0)

static inline lane_t bswap64(lane_t x) {
    x = ((x & 0x00FF00FF00FF00FFUL) << 8) | ((x >> 8) & 0x00FF00FF00FF00FFUL);
    x = ((x & 0x0000FFFF0000FFFFUL) << 16) | ((x >> 16) & 0x0000FFFF0000FFFFUL);
    return ROL(x, 32);
}

// keccak-f[1600] on a[], returning only lanes 0..3 of the result (the hash)
// in o[]: the last round needs all of theta but only the diagonal lanes that
// chi turns into row 0.
// The round loop is left rolled: unrolling it measured slower on pocl.
static inline void keccak_hash_lanes(lane_t a[25], lane_t o[4]) {
    for (int r = 0; r < 23; r++) {
        ROUND(a, RC[r]);
    }
    lane_t c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20];
    lane_t c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21];
    lane_t c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22];
    lane_t c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23];
    lane_t c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24];
    lane_t b0 = a[0] ^ c4 ^ ROL(c1, 1);
    lane_t b1 = ROL(a[6] ^ c0 ^ ROL(c2, 1), 44);
    lane_t b2 = ROL(a[12] ^ c1 ^ ROL(c3, 1), 43);
    lane_t b3 = ROL(a[18] ^ c2 ^ ROL(c4, 1), 21);
    lane_t b4 = ROL(a[24] ^ c3 ^ ROL(c0, 1), 14);
    o[0] = b0 ^ (~b1 & b2) ^ RC[23];
    o[1] = b1 ^ (~b2 & b3);
    o[2] = b2 ^ (~b3 & b4);
    o[3] = b3 ^ (~b4 & b0);
}

// The state before the permutation: challenge lanes c, nonce lanes n4..n7, padding.
static inline void initial_state(lane_t a[25], ulong c0, ulong c1, ulong c2, ulong c3,
                                 lane_t n4, lane_t n5, lane_t n6, lane_t n7) {
    a[0] = c0; a[1] = c1; a[2] = c2; a[3] = c3;
    a[4] = n4; a[5] = n5; a[6] = n6; a[7] = n7;
    a[8] = 0x01UL;
    for (int i = 9; i < 25; i++) a[i] = 0;
    a[16] = 0x8000000000000000UL;
}

// hash < target for one lane: the hash as lanes o0..o3, the target as limbs
// t3 (most significant) .. t0.
static inline int below(ulong o0, ulong o1, ulong o2, ulong o3,
                        ulong t0, ulong t1, ulong t2, ulong t3) {
    ulong h3 = as_ulong(as_uchar8(o0).s76543210);
    ulong h2 = as_ulong(as_uchar8(o1).s76543210);
    ulong h1 = as_ulong(as_uchar8(o2).s76543210);
    ulong h0 = as_ulong(as_uchar8(o3).s76543210);
    if (h3 != t3) return h3 < t3;
    if (h2 != t2) return h2 < t2;
    if (h1 != t1) return h1 < t1;
    return h0 < t0;
}

// Searches one launch's slice of a segment: nonce offsets 0 .. limit-1 from
// the segment's low limb `lo` (lo + limit <= 2^64, checked by the host).
// Step `it` of work item `gid` hashes offsets
//   it * global_size * LANES + gid * LANES + (0 .. LANES-1),
// so each step of the whole launch covers one contiguous block, in
// increasing order. `found` starts at UINT_MAX and ends as the lowest offset
// with a proof: a work item stops as soon as its next offset is above the
// lowest proof found so far, so nothing below it is skipped.
__kernel void search(const ulong c0, const ulong c1, const ulong c2, const ulong c3,
                     const ulong n4, const ulong n5, const ulong n6, const ulong lo,
                     const ulong t0, const ulong t1, const ulong t2, const ulong t3,
                     const uint iters, const uint limit, volatile __global uint *found) {
    const uint stride = (uint)get_global_size(0) * LANES;
    uint first = (uint)get_global_id(0) * LANES;
    for (uint it = 0; it < iters; it++, first += stride) {
        if (first >= limit || *found < first) {
            break;
        }
        const lane_t off = (lane_t)(first) + LANE_IDS;
        lane_t a[25], o[4];
        initial_state(a, c0, c1, c2, c3, n4, n5, n6, bswap64(lo + off));
        keccak_hash_lanes(a, o);
        // Most tries end here: the hash's top limb is above the target's.
        if (ANY(bswap64(o[0]) <= t3)) {
            ulong o0[LANES], o1[LANES], o2[LANES], o3[LANES];
            STORE(o[0], o0); STORE(o[1], o1); STORE(o[2], o2); STORE(o[3], o3);
            for (uint k = 0; k < LANES; k++) {
                if (first + k < limit && below(o0[k], o1[k], o2[k], o3[k], t0, t1, t2, t3)) {
                    atomic_min(found, first + k);
                    break;
                }
            }
        }
    }
}

// Hashes arbitrary pairs for tests: pair i is challenge lanes
// challenge[4i .. 4i+3] and nonce limbs nonce[4i .. 4i+3] (limb 0 least
// significant); out[4i .. 4i+3] gets lanes 0..3 of the permuted state. The
// host pads the pair count to a multiple of LANES.
__kernel void hash_pairs(__global const ulong *challenge, __global const ulong *nonce,
                         __global ulong *out) {
    const uint first = (uint)get_global_id(0) * LANES;
    ulong c[4][LANES], n[4][LANES];
    for (uint k = 0; k < LANES; k++) {
        for (uint j = 0; j < 4; j++) {
            c[j][k] = challenge[4 * (first + k) + j];
            n[j][k] = nonce[4 * (first + k) + j];
        }
    }
    lane_t a[25], o[4];
    // Lane 4 + j holds limb 3 - j, byte-swapped (big-endian nonce bytes).
    initial_state(a, 0, 0, 0, 0, bswap64(LOAD(n[3])), bswap64(LOAD(n[2])),
                  bswap64(LOAD(n[1])), bswap64(LOAD(n[0])));
    a[0] = LOAD(c[0]); a[1] = LOAD(c[1]); a[2] = LOAD(c[2]); a[3] = LOAD(c[3]);
    keccak_hash_lanes(a, o);
    for (uint j = 0; j < 4; j++) {
        ulong v[LANES];
        STORE(o[j], v);
        for (uint k = 0; k < LANES; k++) {
            out[4 * (first + k) + j] = v[k];
        }
    }
}
