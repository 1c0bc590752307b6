//! Random valid encodings for tests (feature `synth`): the generated `synth_*`
//! functions write bytes that a correct decoder must accept.

use std::collections::HashMap;

/// A deterministic writer of random but well-formed Venus values.
pub struct Synth {
    /// The bytes written so far.
    pub out: Vec<u8>,
    state: u64,
    last: HashMap<&'static str, u64>,
}

impl Synth {
    /// A synthesizer seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Synth {
            out: Vec::new(),
            state: seed ^ 0x9e37_79b9_7f4a_7c15,
            last: HashMap::new(),
        }
    }
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    /// A coin flip.
    pub fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    /// Writes a u32.
    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// Writes an i32.
    pub fn i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// Writes a u64.
    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// Writes an array size.
    pub fn size(&mut self, n: usize) {
        self.u64(n as u64);
    }
    /// Writes pointer presence.
    pub fn present(&mut self, p: bool) {
        self.u64(p as u64);
    }
    /// A random u32.
    pub fn random_u32(&mut self) {
        let v = self.next() as u32;
        self.u32(v);
    }
    /// A random u64.
    pub fn random_u64(&mut self) {
        let v = self.next();
        self.u64(v);
    }
    /// A random value ≤ mask in a 4-byte unit (uint8/uint16 scalars).
    pub fn small(&mut self, mask: u32) {
        let v = self.next() as u32 & mask;
        self.u32(v);
    }
    /// A random nonzero object id.
    pub fn id(&mut self) {
        let v = self.below(1 << 40) + 1;
        self.u64(v);
    }
    /// A small count (0..=3), remembered under `name` for `name`-based lengths.
    pub fn count(&mut self, name: &'static str) -> u64 {
        let v = self.below(4);
        self.last.insert(name, v);
        v
    }
    /// The last count written for `name`.
    pub fn last(&self, name: &str) -> u64 {
        self.last.get(name).copied().unwrap_or(0)
    }
    /// A VkSampleCountFlagBits value.
    pub fn sample_count(&mut self) -> u64 {
        1 << self.below(7)
    }
    /// `n` random bytes plus zero padding.
    pub fn random_bytes(&mut self, n: usize) {
        for _ in 0..n {
            let b = self.next() as u8;
            self.out.push(b);
        }
        self.out.resize(self.out.len() + (4 - n % 4) % 4, 0);
    }
    /// A random non-empty NUL-terminated string.
    pub fn string(&mut self) {
        let len = self.below(12) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| b'a' + (self.next() % 26) as u8).collect();
        b.push(0);
        self.size(b.len());
        let n = b.len();
        self.out.extend_from_slice(&b);
        self.out.resize(self.out.len() + (4 - n % 4) % 4, 0);
    }
}
