//! Fixed-size, stack-allocated C string building for the pre-exec child.

use std::ffi::CStr;

use crate::{Errno, Result};

/// A NUL-terminated path built in place, at most `PATH_MAX` bytes.
pub struct PathBuf {
    buf: [u8; libc::PATH_MAX as usize],
    len: usize,
}

impl Default for PathBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl PathBuf {
    pub const fn new() -> Self {
        PathBuf {
            buf: [0; libc::PATH_MAX as usize],
            len: 0,
        }
    }

    /// Appends raw bytes (which must not contain NUL); ENAMETOOLONG when full.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<&mut Self> {
        if self.len + bytes.len() + 1 > self.buf.len() {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self.buf[self.len] = 0;
        Ok(self)
    }

    /// Appends a decimal number.
    pub fn push_u64(&mut self, mut n: u64) -> Result<&mut Self> {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let tmp = digits;
        self.push_bytes(&tmp[i..])
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.buf[0] = 0;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_cstr(&self) -> &CStr {
        // The buffer always holds a NUL at `len` and no NUL before it (push_bytes callers
        // pass NUL-free slices taken from CStrings).
        CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_paths_and_numbers() {
        let mut p = PathBuf::new();
        p.push_bytes(b"/proc/self/fd/")
            .unwrap()
            .push_u64(42)
            .unwrap();
        assert_eq!(p.as_cstr().to_bytes(), b"/proc/self/fd/42");
    }

    #[test]
    fn refuses_overflow() {
        let mut p = PathBuf::new();
        let big = [b'a'; 5000];
        assert_eq!(p.push_bytes(&big).err(), Some(Errno(libc::ENAMETOOLONG)));
    }
}
