//! The 32-bit hash functions HAProxy 2.6 offers to `hash-type`, and the
//! avalanche mixer (`full_hash`) used both as the `avalanche` modifier and to
//! place consistent-hash ring points.
//!
//! All arithmetic is modulo 2^32. Input bytes are treated as unsigned.

/// Which function `hash-type ... <function>` selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashFn {
    /// `sdbm` (the default): `h = h * 65599 + c`.
    #[default]
    Sdbm,
    /// `djb2`: `h = h * 33 + c`, starting at 5381.
    Djb2,
    /// `wt6`: Willy Tarreau's 6-bit-shift hash.
    Wt6,
    /// `crc32`: standard reflected CRC-32 (zlib compatible).
    Crc32,
}

impl HashFn {
    /// Hash `data` with this function (no avalanche).
    pub fn hash(self, data: &[u8]) -> u32 {
        match self {
            HashFn::Sdbm => sdbm(data),
            HashFn::Djb2 => djb2(data),
            HashFn::Wt6 => wt6(data),
            HashFn::Crc32 => crc32(data),
        }
    }

    /// The configuration word for this function.
    pub fn name(self) -> &'static str {
        match self {
            HashFn::Sdbm => "sdbm",
            HashFn::Djb2 => "djb2",
            HashFn::Wt6 => "wt6",
            HashFn::Crc32 => "crc32",
        }
    }
}

/// sdbm: `h = c + (h << 6) + (h << 16) - h`, i.e. `h * 65599 + c`.
pub fn sdbm(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |h, &c| h.wrapping_mul(65599).wrapping_add(c as u32))
}

/// djb2: `h = h * 33 + c` starting from 5381.
pub fn djb2(data: &[u8]) -> u32 {
    data.iter()
        .fold(5381u32, |h, &c| h.wrapping_mul(33).wrapping_add(c as u32))
}

/// wt6 hash.
pub fn wt6(data: &[u8]) -> u32 {
    let (mut h0, mut h1) = (0xa53c_965au32, 0x5ca6_953au32);
    let (mut s0, mut s1) = (6u32, 18u32);
    for &b in data {
        let t = b as u32;
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        let tmp = h1.rotate_left(s0);
        h1 = h0.rotate_left(s1);
        h0 = tmp;
        let u = ((h0 >> 16) ^ h1) & 0xffff;
        s0 = u & 31;
        s1 = u >> 11;
    }
    h0 ^ h1
}

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32_TABLE: [u32; 256] = crc32_table();

/// Standard CRC-32 (poly 0xEDB88320 reflected, init and final xor 0xFFFFFFFF).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC32_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

/// The avalanche mixer (Bob Jenkins' 32-bit integer hash followed by a
/// multiplication). A bijection on `u32`.
pub fn full_hash(a: u32) -> u32 {
    let mut a = a;
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lb_full_hash_vectors() {
        assert_eq!(full_hash(0), 0xab4e_d927);
        assert_eq!(full_hash(0x0a00_0001), 0x2aa2_6e52);
        assert_eq!(full_hash(4096), 0x49c2_008b);
    }

    #[test]
    fn lb_crc32_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn lb_simple_hashes() {
        assert_eq!(sdbm(b""), 0);
        assert_eq!(sdbm(b"a"), 97);
        assert_eq!(sdbm(b"ab"), 97u32.wrapping_mul(65599) + 98);
        assert_eq!(djb2(b""), 5381);
        assert_eq!(djb2(b"a"), 5381 * 33 + 97);
        // sdbm's shift formulation equals the multiplication.
        let shifty = b"/some/uri?x=1".iter().fold(0u32, |h, &c| {
            (c as u32)
                .wrapping_add(h << 6)
                .wrapping_add(h << 16)
                .wrapping_sub(h)
        });
        assert_eq!(shifty, sdbm(b"/some/uri?x=1"));
        assert_eq!(wt6(b""), 0xa53c_965a ^ 0x5ca6_953a);
    }
}
