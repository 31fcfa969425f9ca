//! X25519 key agreement (RFC 7748), computed on the Edwards form of the curve.
//!
//! The result is X25519's, bit for bit, for every secret and every 32-byte
//! public value (SPEC.md §3.5 names X25519; nothing here changes a byte). The
//! route differs: curve25519-dalek's Montgomery ladder runs on its portable
//! field arithmetic, while its Edwards scalar multiplication runs on the
//! vector backends (AVX2, or AVX-512 IFMA where the crate is built with
//! `curve25519_dalek_backend="avx512"`, as this repository's
//! `.cargo/config.toml` does; either is chosen at run time by the CPU). A
//! rotation is one agreement per member, so this is most of its cost.
//!
//! Why the result is X25519's: the clamped scalar is `k = 8·k'`. The public
//! value `u` is the Montgomery u-coordinate of two Edwards points `±P` (the
//! sign is lost in `u`, and `u(k·P) = u(k·(−P))`), so X25519 is
//! `u(k·P) = u(k'·(8·P))`. `8·P` lies in the prime-order subgroup, where a
//! scalar may be reduced mod ℓ; `k' < 2^252 < ℓ` needs no reduction anyway. A
//! `u` that is no Edwards point's (one on the quadratic twist, or `u = −1`)
//! takes the ladder, so the function is total; which route a public value
//! takes depends on that public value alone. Every step on the secret is
//! constant time: the scalar shift, the scalar multiplication, and the
//! conversions, whose inputs are public or already products.
//!
//! Tests below compare both routes with the RFC's vectors and with the ladder
//! on random inputs, twist points and non-canonical encodings included.

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use zeroize::{Zeroize, Zeroizing};

/// `X25519(secret, public)`, RFC 7748 §5: the all-zero output included
/// (callers refuse it).
pub(crate) fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut shared = agree_many(secret, core::slice::from_ref(public));
    match shared.pop() {
        Some(one) => one,
        // `agree_many` returns one output per input.
        None => Zeroizing::new(MontgomeryPoint(*public).mul_clamped(*secret).to_bytes()),
    }
}

/// `X25519(secret, public)` for each public value, in order. One secret with
/// many public values is a rotation's envelope; the conversions back to
/// Montgomery form share one field inversion.
pub(crate) fn agree_many(secret: &[u8; 32], publics: &[[u8; 32]]) -> Vec<Zeroizing<[u8; 32]>> {
    let scalar = Zeroizing::new(Scalar::from_bytes_mod_order(cofactor_quotient(secret)));
    let mut products: Vec<EdwardsPoint> = Vec::with_capacity(publics.len());
    // The public values that are no Edwards point's, by index: the ladder's.
    let mut on_ladder: Vec<usize> = Vec::new();
    for (index, public) in publics.iter().enumerate() {
        match MontgomeryPoint(*public).to_edwards(0) {
            // By reference: `Scalar` is `Copy`, and a copy would escape the wipe.
            #[allow(clippy::op_ref)]
            Some(point) => products.push(&*scalar * point.mul_by_cofactor()),
            None => {
                on_ladder.push(index);
                // A placeholder, replaced below.
                products.push(EdwardsPoint::default());
            }
        }
    }
    let mut montgomery = EdwardsPoint::to_montgomery_batch(&products);
    products.zeroize();
    let mut shared: Vec<Zeroizing<[u8; 32]>> = montgomery
        .iter()
        .map(|point| Zeroizing::new(point.to_bytes()))
        .collect();
    montgomery.zeroize();
    for index in on_ladder {
        if let (Some(slot), Some(public)) = (shared.get_mut(index), publics.get(index)) {
            **slot = MontgomeryPoint(*public).mul_clamped(*secret).to_bytes();
        }
    }
    shared
}

/// Whether an agreement's output is not all zeros (RFC 7748 §6.1's check:
/// an all-zero output means a small-order public value the peer's secret did
/// not contribute to), read whole (no early exit on the secret bytes).
pub(crate) fn is_contributory(shared: &[u8; 32]) -> bool {
    shared.iter().fold(0u8, |acc, byte| acc | byte) != 0
}

/// `clamp(secret) / 8`, little-endian: exact, since clamping clears the low
/// three bits, and below 2^252, since it clears bit 255.
fn cofactor_quotient(secret: &[u8; 32]) -> [u8; 32] {
    let clamped = Zeroizing::new(clamp_integer(*secret));
    let mut quotient = [0u8; 32];
    let mut carry = 0u8;
    for (out, byte) in quotient.iter_mut().zip(clamped.iter()).rev() {
        *out = (byte >> 3) | carry;
        carry = byte << 5;
    }
    quotient
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex32(text: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).expect("test vector");
        out
    }

    /// RFC 7748 §5.2: the two scalar-multiplication vectors.
    #[test]
    fn rfc7748_vectors() {
        let cases = [
            (
                "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
            ),
            (
                "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
                "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
            ),
        ];
        for (secret, public, expected) in cases {
            assert_eq!(*x25519(&hex32(secret), &hex32(public)), hex32(expected));
        }
    }

    /// RFC 7748 §5.2: the iterated vector, 1,000 iterations (the input `u`
    /// of each is the previous `k`, a value on the curve or its twist alike).
    #[test]
    fn rfc7748_iterated() {
        let mut k = hex32("0900000000000000000000000000000000000000000000000000000000000000");
        let mut u = k;
        for iteration in 1..=1000 {
            let next = *x25519(&k, &u);
            u = k;
            k = next;
            if iteration == 1 {
                assert_eq!(
                    k,
                    hex32("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
                );
            }
        }
        assert_eq!(
            k,
            hex32("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")
        );
    }

    /// Small-order points (including the identity and the twist's) give what
    /// the ladder gives: all zeros, which callers refuse.
    #[test]
    fn small_order_points_give_zero_as_the_ladder_does() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        for point in EIGHT_TORSION {
            let u = point.to_montgomery().to_bytes();
            assert_eq!(*x25519(&[7; 32], &u), [0; 32]);
        }
    }

    proptest! {
        #[test]
        fn equals_the_ladder(secret in any::<[u8; 32]>(), publics in proptest::collection::vec(any::<[u8; 32]>(), 1..8)) {
            // Half the random values are on the twist; every bit pattern, the
            // non-canonical (u >= p) and the high bit included, is X25519 input.
            let batch = agree_many(&secret, &publics);
            prop_assert_eq!(batch.len(), publics.len());
            for (public, shared) in publics.iter().zip(&batch) {
                let ladder = x25519_dalek::x25519(secret, *public);
                prop_assert_eq!(**shared, ladder);
                prop_assert_eq!(*x25519(&secret, public), ladder);
            }
        }

        #[test]
        fn equals_the_ladder_on_curve_points(secret in any::<[u8; 32]>(), other in any::<[u8; 32]>()) {
            let public = x25519_dalek::x25519(other, x25519_dalek::X25519_BASEPOINT_BYTES);
            prop_assert_eq!(*x25519(&secret, &public), x25519_dalek::x25519(secret, public));
        }
    }
}
