//! Helpers shared by the unit tests of several modules.

/// A xorshift64 generator from `seed` (not 0): deterministic pseudo-random
/// numbers for the tests that corrupt or generate input, so a failure
/// reproduces.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// One to three random edits of `bytes` (each replaces, inserts or removes
/// one byte, the new byte taken from `specials`): the corruption the parser
/// tests compare their fast paths under. `bytes` must not be empty.
pub fn mangle(bytes: &mut Vec<u8>, specials: &[u8], next: &mut impl FnMut() -> u64) {
    for _ in 0..1 + next() % 3 {
        let pos = (next() as usize) % bytes.len();
        let byte = specials[(next() as usize) % specials.len()];
        match next() % 3 {
            0 => bytes[pos] = byte,
            1 => bytes.insert(pos, byte),
            _ => drop(bytes.remove(pos)),
        }
    }
}
