//! The distance an index was built for, and the two distances hnswlib computes (squared
//! euclidean and inner product), vectorised where the CPU allows. Pure computation, read by
//! the records reader and the index builder alike.

/// The distance an index was built for (`hnsw:space`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Squared euclidean distance (`l2`, Chroma's default).
    L2,
    /// `1 - dot` (`ip`).
    Ip,
    /// `1 - dot` over vectors Chroma stored normalised (`cosine`).
    Cosine,
}

impl Space {
    /// The name Chroma stores.
    pub fn key(self) -> &'static str {
        match self {
            Space::L2 => "l2",
            Space::Ip => "ip",
            Space::Cosine => "cosine",
        }
    }

    pub fn parse(s: &str) -> Option<Space> {
        match s {
            "l2" => Some(Space::L2),
            "ip" => Some(Space::Ip),
            "cosine" => Some(Space::Cosine),
            _ => None,
        }
    }

    /// The distance between two stored vectors.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Space::L2 => l2(a, b),
            Space::Ip | Space::Cosine => 1.0 - dot(a, b),
        }
    }
}

/// Eight independent accumulators: the compiler turns each loop into vector instructions
/// without reordering any one sum.
#[inline(always)]
fn l2_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            let d = x[j] - y[j];
            acc[j] += d * d;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        s += d * d;
    }
    s
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_avx(a: &[f32], b: &[f32]) -> f32 {
    l2_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
fn has_avx() -> bool {
    use std::sync::OnceLock;
    static AVX: OnceLock<bool> = OnceLock::new();
    *AVX.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Squared euclidean distance.
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has the features the function was compiled for.
        return unsafe { l2_avx(a, b) };
    }
    l2_lanes(a, b)
}

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has the features the function was compiled for.
        return unsafe { dot_avx(a, b) };
    }
    dot_lanes(a, b)
}
