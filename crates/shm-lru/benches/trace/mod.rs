//! What the benches that replay traces share: a seeded generator, value size distributions,
//! Zipf requests, the trace T1's sizes and the keys' bytes. (Each bench uses part of it.)
#![allow(dead_code)]

pub const KIB: u64 = 1024;
/// Key length of every trace.
pub const KEY_LEN: u64 = 24;

/// splitmix64: a small seeded generator, enough for traces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[derive(Clone, Copy)]
pub enum SizeDist {
    /// Log-normal with this median and sigma, drawn again until inside [lo, hi].
    LogNormal {
        median: f64,
        sigma: f64,
        lo: u64,
        hi: u64,
    },
    /// Uniform in [lo, hi].
    Uniform { lo: u64, hi: u64 },
}

impl SizeDist {
    pub fn draw(self, rng: &mut Rng) -> u32 {
        match self {
            SizeDist::LogNormal {
                median,
                sigma,
                lo,
                hi,
            } => loop {
                let v = (median.ln() + sigma * rng.normal()).exp().round() as u64;
                if (lo..=hi).contains(&v) {
                    return v as u32;
                }
            },
            SizeDist::Uniform { lo, hi } => (lo + rng.below(hi - lo + 1)) as u32,
        }
    }
}

/// Zipf(theta) over `n` keys: popularity ranks by an inverse CDF, keys by a seeded permutation.
pub fn zipf_requests(rng: &mut Rng, n: usize, theta: f64, count: usize) -> Vec<u32> {
    let mut cdf = Vec::with_capacity(n);
    let mut sum = 0.0;
    for r in 1..=n {
        sum += 1.0 / (r as f64).powf(theta);
        cdf.push(sum);
    }
    let mut perm: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    (0..count)
        .map(|_| {
            let u = rng.unit() * sum;
            let r = cdf.partition_point(|&c| c < u).min(n - 1);
            perm[r]
        })
        .collect()
}

/// T1's value sizes (and the shifted trace's): log-normal with this median, sigma 1, truncated
/// to [200 B, 64 KiB].
pub fn t1_dist(median: f64) -> SizeDist {
    SizeDist::LogNormal {
        median,
        sigma: 1.0,
        lo: 200,
        hi: 64 * KIB,
    }
}

/// The trace's key `key` as 24 bytes: `k` and 23 decimal digits.
pub fn key_bytes(key: u32) -> [u8; KEY_LEN as usize] {
    let mut k = [b'0'; KEY_LEN as usize];
    k[0] = b'k';
    let mut x = key;
    let mut i = k.len();
    while x > 0 {
        i -= 1;
        k[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    k
}
